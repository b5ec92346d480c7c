# bus/nkeys.c, panel-api/crypto/natsjwt.c and panel-api/api/natsauth.c against a real nats-server in
# operator mode, with nats.c (through warden::bus) as the client.
wd_add_test(test_natsjwt SOURCES test_natsjwt.c LIBS warden::api warden::crypto warden::bus PkgConfig::JANSSON LABEL integration TIMEOUT 120)
