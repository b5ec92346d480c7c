# Install layout (issue 6, item 2): `cmake --install <build> [--prefix P]`.
#
#   bin/            warden-api warden-ws warden-agent warden-shim wardenctl
#                   (warden-shim next to warden-agent: the agent looks for it
#                   beside its own binary unless --shim/WARDEN_SHIM says otherwise)
#   share/warden/web          the built web panel (<build>/web)
#   share/warden/templates    templates/*.json
#   share/doc/warden/         install.md, examples/*.env.example
#   lib/systemd/system/       warden-api.service warden-ws.service warden-agent.service
#   lib/sysusers.d/warden.conf  the "warden" system user of warden-api/warden-ws
#
# Install components, one Debian package each (cmake/packaging.cmake):
#   panel  warden-api, warden-ws, web, templates, their units and examples
#   agent  warden-agent, warden-shim, its unit and example
#   cli    wardenctl and the docs (both other packages depend on it, so a host
#          can have the panel and the agent without a file conflict)
include(GNUInstallDirs)

set(WARDEN_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd unit directory, relative to the install prefix")
set(WARDEN_SYSUSERSDIR "lib/sysusers.d" CACHE STRING
    "sysusers.d directory, relative to the install prefix")
set(WARDEN_DATA_SUBDIR "${CMAKE_INSTALL_DATADIR}/warden")

# Binaries.
set(_wd_panel_bins warden-api warden-ws)
set(_wd_agent_bins warden-agent warden-shim)
foreach(t ${_wd_panel_bins} ${_wd_agent_bins} wardenctl)
  if(NOT TARGET ${t})
    message(FATAL_ERROR "install.cmake: target ${t} is not defined")
  endif()
endforeach()
install(TARGETS ${_wd_panel_bins} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT panel)
install(TARGETS ${_wd_agent_bins} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
install(TARGETS wardenctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
# Makes the CA and certificates for TLS to NATS (docs/operations.md).
install(PROGRAMS ${CMAKE_SOURCE_DIR}/deploy/tls/warden-nats-certs
        DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT panel)
install(FILES ${CMAKE_BINARY_DIR}/cli/wardenctl.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME wardenctl COMPONENT cli)

# The web panel (built by tools/web.cmake when web/ is there).
if(TARGET web_bundle)
  install(DIRECTORY ${CMAKE_BINARY_DIR}/web/ DESTINATION ${WARDEN_DATA_SUBDIR}/web
          COMPONENT panel)
endif()

# Game templates.
file(GLOB _wd_templates CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/templates/*.json)
install(FILES ${_wd_templates} DESTINATION ${WARDEN_DATA_SUBDIR}/templates COMPONENT panel)

# Example settings and the docs.
set(_wd_sd ${CMAKE_SOURCE_DIR}/deploy/systemd)
install(FILES ${_wd_sd}/warden-api.env.example ${_wd_sd}/warden-ws.env.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT panel)
install(FILES ${_wd_sd}/warden-agent.env.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT agent)
install(FILES ${CMAKE_SOURCE_DIR}/docs/install.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT cli)
install(FILES ${_wd_sd}/warden.sysusers DESTINATION ${WARDEN_SYSUSERSDIR}
        RENAME warden.conf COMPONENT panel)

# systemd units: ExecStart= and friends need the final paths, which are only
# known at install time (`--prefix`, or /usr when CPack stages a package with
# DESTDIR), so the units are configured by the install script itself.
function(_wd_install_unit unit component)
  set(src ${_wd_sd}/${unit})
  set(out ${CMAKE_BINARY_DIR}/systemd/${component}/${unit})
  install(CODE "
    function(_wd_abs var rel)
      if(IS_ABSOLUTE \"\${rel}\")
        set(\${var} \"\${rel}\" PARENT_SCOPE)
      else()
        set(\${var} \"\${CMAKE_INSTALL_PREFIX}/\${rel}\" PARENT_SCOPE)
      endif()
    endfunction()
    _wd_abs(WARDEN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    _wd_abs(WARDEN_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
    _wd_abs(WARDEN_WEBDIR \"${WARDEN_DATA_SUBDIR}/web\")
    _wd_abs(_wd_unitdir \"${WARDEN_SYSTEMD_UNITDIR}\")
    configure_file(\"${src}\" \"${out}\" @ONLY)
    file(INSTALL DESTINATION \"\${_wd_unitdir}\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \"${out}\")
  " COMPONENT ${component})
endfunction()
_wd_install_unit(warden-api.service panel)
_wd_install_unit(warden-ws.service panel)
_wd_install_unit(warden-agent.service agent)

include(${CMAKE_CURRENT_LIST_DIR}/packaging.cmake)
