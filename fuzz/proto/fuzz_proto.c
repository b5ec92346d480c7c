/* libFuzzer driver for the protobuf decoders of every message the agent and
 * tools accept from the bus: arbitrary bytes unpacked as each type, and
 * whatever decodes is packed again. (Repacked bytes need not decode again:
 * protobuf-c keeps strings as C strings, so an embedded NUL shortens one.) */
#include <stdint.h>
#include <stdlib.h>

#include "warden/v1/backup.pb-c.h"
#include "warden/v1/console.pb-c.h"
#include "warden/v1/files.pb-c.h"
#include "warden/v1/node.pb-c.h"
#include "warden/v1/server.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
    &warden__v1__sync_request__descriptor,     &warden__v1__install_request__descriptor,
    &warden__v1__power_request__descriptor,    &warden__v1__console_input__descriptor,
    &warden__v1__delete_request__descriptor,   &warden__v1__info_request__descriptor,
    &warden__v1__console_chunk__descriptor,    &warden__v1__server_state_event__descriptor,
    &warden__v1__server_stats__descriptor,     &warden__v1__node_heartbeat__descriptor,
    &warden__v1__discovery_hello__descriptor,  &warden__v1__discovery_hello_reply__descriptor,
    &warden__v1__file_write_request__descriptor, &warden__v1__backup_create_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        ProtobufCMessage *m = protobuf_c_message_unpack(types[i], NULL, size, data);
        if (m == NULL)
            continue;
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *buf = malloc(len + 1);
        protobuf_c_message_pack(m, buf);
        ProtobufCMessage *again = protobuf_c_message_unpack(types[i], NULL, len, buf);
        if (again)
            protobuf_c_message_free_unpacked(again, NULL);
        free(buf);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
