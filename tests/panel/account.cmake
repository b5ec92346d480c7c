# TOTP 2FA and password change (test_api_account.c).
wd_add_test(test_api_account SOURCES test_api_account.c LIBS warden_api_fixture
            LABEL integration TIMEOUT 120)
