// Command history for the console input: up/down walks older/newer entries, and the
// line being typed is kept as a draft while browsing.
export class CommandHistory {
  private items: string[] = [];
  private pos = -1; // -1 = editing the draft
  private draft = "";
  constructor(private readonly max = 100) {}

  get entries(): readonly string[] {
    return this.items;
  }

  push(cmd: string) {
    const c = cmd.trim();
    this.pos = -1;
    this.draft = "";
    if (!c) return;
    if (this.items[this.items.length - 1] !== c) this.items.push(c);
    if (this.items.length > this.max) this.items.shift();
  }

  /** Older entry (ArrowUp); `current` is what is in the box now. */
  up(current: string): string {
    if (this.items.length === 0) return current;
    if (this.pos === -1) {
      this.draft = current;
      this.pos = this.items.length - 1;
    } else if (this.pos > 0) {
      this.pos--;
    }
    return this.items[this.pos] ?? current;
  }

  /** Newer entry (ArrowDown); past the newest, the draft comes back. */
  down(current: string): string {
    if (this.pos === -1) return current;
    if (this.pos < this.items.length - 1) {
      this.pos++;
      return this.items[this.pos] ?? current;
    }
    this.pos = -1;
    return this.draft;
  }
}
