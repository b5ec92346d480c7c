if(TARGET warden::api AND TARGET warden_test_harness_pg)
  wd_add_test(test_api_account SOURCES test_api_account.c LIBS warden::api warden_test_harness_pg
              LABEL integration TIMEOUT 120)
endif()
