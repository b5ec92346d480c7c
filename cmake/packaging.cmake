# Debian packages (issue 6, item 2), from the install components of
# cmake/install.cmake. In the build directory:
#
#   cpack -G DEB        ->  warden-panel_<v>_<arch>.deb   warden-api, warden-ws, web, templates,
#                                                         their units, the warden user
#                           warden-agent_<v>_<arch>.deb   warden-agent, warden-shim, its unit
#                           warden-cli_<v>_<arch>.deb     wardenctl and the docs
#
# wardenctl gets a package of its own, which both others depend on: were it in
# both, dpkg would refuse to install the panel and the agent on one host
# ("trying to overwrite /usr/bin/wardenctl").
set(CPACK_PACKAGE_NAME warden)
set(CPACK_PACKAGE_VENDOR "Warden")
set(CPACK_PACKAGE_CONTACT "Warden maintainers <warden@localhost>" CACHE STRING
    "Maintainer field of the packages")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Warden game-server control plane")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages CACHE PATH
    "where cpack writes the packages (cpack -B overrides)")
set(CPACK_COMPONENTS_ALL panel agent cli)
set(CPACK_COMPONENTS_GROUPING IGNORE)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/warden/warden" CACHE STRING
    "Homepage field of the packages")

set(_wd_ver "${PROJECT_VERSION}")
set(_wd_deb ${CMAKE_CURRENT_LIST_DIR}/debian)

set(CPACK_DEBIAN_PANEL_PACKAGE_NAME warden-panel)
set(CPACK_DEBIAN_PANEL_DESCRIPTION
    "Warden panel: REST API, WebSocket gateway and web panel\n\
warden-api (the REST API on PostgreSQL, serving the web panel) and warden-ws\n\
(the WebSocket gateway), with the web panel, the game templates, hardened\n\
systemd units (warden-api.service, warden-ws.service) running as the system\n\
user warden, and example settings in /usr/share/doc/warden/examples.")
set(CPACK_DEBIAN_PANEL_PACKAGE_DEPENDS "warden-cli (= ${_wd_ver}), systemd")
set(CPACK_DEBIAN_PANEL_PACKAGE_RECOMMENDS "postgresql, nats-server")
set(CPACK_DEBIAN_PANEL_PACKAGE_CONTROL_EXTRA "${_wd_deb}/panel/postinst;${_wd_deb}/panel/postrm")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME warden-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "Warden agent: runs game servers on a game host\n\
warden-agent joins a Warden panel over NATS and installs, starts, watches and\n\
stops game servers, each sandboxed with bubblewrap under its own warden-shim\n\
supervisor, with cgroup limits; includes warden-agent.service.")
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "warden-cli (= ${_wd_ver}), bubblewrap, systemd")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA "${_wd_deb}/agent/postinst;${_wd_deb}/agent/postrm")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME warden-cli)
set(CPACK_DEBIAN_CLI_DESCRIPTION
    "Warden command-line tool (wardenctl)\n\
wardenctl, the operator's CLI for a Warden panel, over the NATS bus or the\n\
REST API; and the installation guide.")

include(CPack)
