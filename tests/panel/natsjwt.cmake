# panel-api/crypto/nkeys.c and natsjwt.c against a real nats-server in
# operator mode, with nats.c (through warden::bus) as the client.
wd_add_test(test_natsjwt SOURCES test_natsjwt.c LIBS warden::crypto warden::bus LABEL integration TIMEOUT 120)
