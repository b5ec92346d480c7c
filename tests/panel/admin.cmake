# API keys, user administration, subusers and the audit log (test_api_admin.c).
if(TARGET warden::api AND TARGET warden_test_harness_pg)
  wd_add_test(test_api_admin SOURCES test_api_admin.c LIBS warden::api warden_test_harness_pg LABEL integration TIMEOUT 120)
endif()
