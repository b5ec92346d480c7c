# Tests for panel-api/crypto/: passwords, JWTs (including libjwt's security
# traps), opaque tokens, TOTP, recovery codes, secretbox. The test forges
# hostile tokens itself, so it uses OpenSSL directly.
wd_add_test(test_crypto SOURCES test_crypto.c LIBS warden::crypto LABEL unit TIMEOUT 60)
pkg_check_modules(TEST_CRYPTO_SSL REQUIRED IMPORTED_TARGET libcrypto)
target_link_libraries(test_crypto PRIVATE PkgConfig::TEST_CRYPTO_SSL)
