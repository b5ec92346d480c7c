# The web panel (web/): TypeScript checked and bundled by Vite into
# <build>/web, which warden-api serves (--web-dir; make run passes it).
# Rebuilt when a file under web/src, or the web build settings, change.
# Needs web/node_modules (scripts/bootstrap runs npm ci there).
set(WEB_DIR ${CMAKE_SOURCE_DIR}/web)
if(EXISTS ${WEB_DIR}/package.json)
  file(GLOB_RECURSE WEB_SOURCES CONFIGURE_DEPENDS ${WEB_DIR}/src/* ${WEB_DIR}/public/*)
  set(WEB_OUT ${CMAKE_BINARY_DIR}/web)
  add_custom_command(
    OUTPUT ${WEB_OUT}/index.html
    COMMAND ${WEB_DIR}/node_modules/.bin/tsc --noEmit -p ${WEB_DIR}
    COMMAND ${WEB_DIR}/node_modules/.bin/vite build --logLevel warn --outDir ${WEB_OUT}
            --emptyOutDir
    WORKING_DIRECTORY ${WEB_DIR}
    DEPENDS ${WEB_SOURCES} ${WEB_DIR}/index.html ${WEB_DIR}/package.json
            ${WEB_DIR}/package-lock.json ${WEB_DIR}/vite.config.ts ${WEB_DIR}/tsconfig.json
    COMMENT "building the web panel (tsc + vite) into ${WEB_OUT}"
    VERBATIM)
  add_custom_target(web_bundle ALL DEPENDS ${WEB_OUT}/index.html)
endif()
