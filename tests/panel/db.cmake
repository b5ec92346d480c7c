# warden::db integration test against a throwaway PostgreSQL (tests/harness/pg.c).
# Included from the directory holding test_db.c (tests/panel).
if(NOT TARGET warden_test_harness_pg)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
  add_library(warden_test_harness_pg STATIC ${CMAKE_CURRENT_LIST_DIR}/../harness/pg.c)
  target_include_directories(warden_test_harness_pg PUBLIC ${CMAKE_CURRENT_LIST_DIR}/../harness)
  target_link_libraries(warden_test_harness_pg PUBLIC warden_test_harness PkgConfig::LIBPQ)
endif()

wd_add_test(test_db SOURCES test_db.c LIBS warden::db warden_test_harness_pg LABEL integration TIMEOUT 120)
