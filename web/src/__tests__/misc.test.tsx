import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { Chart } from "../components/Chart";
import { qrSvg } from "../pages/AccountPage";
import { LoginPage } from "../pages/LoginPage";
import { ToastProvider } from "../toast";
import { match } from "../router";

describe("Chart", () => {
  it("draws the points of the window and shows the latest value", () => {
    const now = 1_700_000_000_000;
    const pts = [0, 1, 2, 3].map((i) => ({ t: now - (3 - i) * 2000, v: i * 10 }));
    const { container } = render(<Chart title="CPU" testid="c" points={pts} format={(v) => `${v}%`} />);
    expect(screen.getByTestId("c").textContent).toContain("30%");
    const paths = container.querySelectorAll("path");
    expect(paths.length).toBe(2); // area + line
    expect(paths[1]?.getAttribute("d")?.split("L")).toHaveLength(4);
  });
  it("says when there is no data", () => {
    render(<Chart title="Memory" testid="m" points={[]} format={(v) => String(v)} />);
    expect(screen.getByTestId("m").textContent).toContain("no data yet");
  });
});

describe("2FA QR code", () => {
  it("renders the otpauth URI as an SVG", () => {
    const svg = qrSvg("otpauth://totp/Warden:admin?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Warden");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("path");
  });
});

describe("router", () => {
  it("matches patterns", () => {
    expect(match("/servers/:id", "/servers/abc")).toEqual({ id: "abc" });
    expect(match("/servers/:id", "/servers/abc/console")).toBeNull();
    expect(match("/admin/:section", "/admin/nodes")).toEqual({ section: "nodes" });
  });
});

describe("sign-in notice", () => {
  it("explains why the session ended", () => {
    render(
      <ToastProvider>
        <LoginPage notice="Your session has expired" />
      </ToastProvider>,
    );
    expect(screen.getByTestId("login-notice").textContent).toBe("Your session has expired");
  });
});
