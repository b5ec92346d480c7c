# API keys, user administration, subusers and the audit log (test_api_admin.c).
wd_add_test(test_api_admin SOURCES test_api_admin.c LIBS warden_api_fixture warden::wstoken
            LABEL integration TIMEOUT 120)
add_dependencies(test_api_admin warden-api) # runs `warden-api template import`
