/* Integration tests of the agent's backups (agent/backup.c, docs/backups.md)
 * against a real nats-server and a real warden-agent: create, list,
 * restore (with and without truncate), delete, ignore patterns, one job
 * per server, refusals (bad ids, garbage, wrong state), hostile archives
 * placed in the backups directory, and deletion with the server. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "subject.h"
#include "util.h"
#include "warden/v1/backup.pb-c.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;

static int suite_init(void)
{
    return wd_fx_start(&fx) ? 0 : 1;
}

static int suite_clean(void)
{
    wd_fx_stop(&fx);
    return 0;
}

/* ---- helpers ---- */

static wd_watch *new_game(char id[37])
{
    CU_ASSERT_EQUAL_FATAL(wd_fx_create(&fx, wd_fx_template("testgame"), NULL, id), WD_OK);
    wd_watch *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    CU_ASSERT_EQUAL_FATAL(
        wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL), WD_OK);
    CU_ASSERT_FATAL(wd_watch_wait_state(w, ST(OFFLINE), 20000));
    return w;
}

static const char *server_path(const char *id, const char *rel)
{
    static char buf[4][1200];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/volumes/%s%s%s", fx.data_dir, id, rel ? "/" : "",
             rel ? rel : "");
    return b;
}

static const char *backup_path(const char *id, const char *bid, const char *ext)
{
    static char buf[4][1200];
    static int k;
    char *b = buf[k++ % 4];
    if (bid)
        snprintf(b, sizeof buf[0], "%s/backups/%s/%s%s", fx.data_dir, id, bid, ext);
    else
        snprintf(b, sizeof buf[0], "%s/backups/%s", fx.data_dir, id);
    return b;
}

static bool write_file(const char *path, const void *data, size_t len)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        wd_mkdir_p(dir, 0755);
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static bool write_text(const char *path, const char *text)
{
    return write_file(path, text, strlen(text));
}

/* True if the file holds exactly text. */
static bool file_is(const char *path, const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    if (wd_read_file(path, 64 << 20, &buf, &len) != WD_OK)
        return false;
    bool same = len == strlen(text) && memcmp(buf, text, len) == 0;
    free(buf);
    return same;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void sha256_file(const char *path, char out[65], uint64_t *size)
{
    out[0] = '\0';
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, n);
        *size += n;
    }
    fclose(f);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < dl; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Entry names of a .tar.gz, joined by '\n' (each line "name" or
 * "name -> target"); caller frees. */
static char *archive_names(const char *path)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    char *out = calloc(1, 1);
    size_t len = 0;
    if (archive_read_open_filename(a, path, 65536) == ARCHIVE_OK) {
        struct archive_entry *e;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
            const char *t = archive_entry_symlink(e);
            char line[2048];
            int n = snprintf(line, sizeof line, "%s%s%s\n", archive_entry_pathname(e),
                             t ? " -> " : "", t ? t : "");
            out = realloc(out, len + (size_t)n + 1);
            memcpy(out + len, line, (size_t)n + 1);
            len += (size_t)n;
        }
    }
    archive_read_free(a);
    return out;
}

static bool has_line(const char *names, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = names; (p = strstr(p, line)) != NULL; p++)
        if ((p == names || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static wd_status create_backup(const char *id, const char *bid, const char *const *ignore,
                               Warden__V1__BackupCreateReply **reply)
{
    Warden__V1__BackupCreateRequest req = WARDEN__V1__BACKUP_CREATE_REQUEST__INIT;
    req.backup_id = (char *)bid;
    for (; ignore && ignore[req.n_ignore]; req.n_ignore++)
        ;
    req.ignore = (char **)ignore;
    return wd_fx_request(&fx, id, "backup.create", &req.base,
                         &warden__v1__backup_create_reply__descriptor, (ProtobufCMessage **)reply);
}

static wd_status restore_backup(const char *id, const char *bid, bool truncate)
{
    Warden__V1__BackupRestoreRequest req = WARDEN__V1__BACKUP_RESTORE_REQUEST__INIT;
    req.backup_id = (char *)bid;
    req.truncate = truncate;
    return wd_fx_request(&fx, id, "backup.restore", &req.base, &warden__v1__ack__descriptor, NULL);
}

static wd_status delete_backup(const char *id, const char *bid)
{
    Warden__V1__BackupDeleteRequest req = WARDEN__V1__BACKUP_DELETE_REQUEST__INIT;
    req.backup_id = (char *)bid;
    return wd_fx_request(&fx, id, "backup.delete", &req.base, &warden__v1__ack__descriptor, NULL);
}

static Warden__V1__BackupListReply *list_backups(const char *id)
{
    Warden__V1__BackupListRequest req = WARDEN__V1__BACKUP_LIST_REQUEST__INIT;
    ProtobufCMessage *r = NULL;
    if (wd_fx_request(&fx, id, "backup.list", &req.base, &warden__v1__backup_list_reply__descriptor,
                      &r) != WD_OK) {
        if (r)
            protobuf_c_message_free_unpacked(r, NULL);
        return NULL;
    }
    return (Warden__V1__BackupListReply *)r;
}

/* A request whose reply is collected later: lets a test have a job
 * running while it sends the next request. */
typedef struct {
    natsSubscription *sub;
} pending;

static void send_async(pending *p, const char *id, const char *op, const ProtobufCMessage *msg)
{
    char subj[WD_SUBJECT_MAX], inbox[128];
    wd_subj_agent_server(subj, sizeof subj, fx.node_id, id, op);
    natsInbox *ib = NULL;
    natsInbox_Create(&ib);
    snprintf(inbox, sizeof inbox, "%s", (const char *)ib);
    natsInbox_Destroy(ib);
    natsConnection_SubscribeSync(&p->sub, wd_bus_nats(fx.bus), inbox);
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    natsConnection_PublishRequest(wd_bus_nats(fx.bus), subj, inbox, buf, (int)len);
    natsConnection_Flush(wd_bus_nats(fx.bus));
    free(buf);
}

static wd_status wait_async(pending *p, const ProtobufCMessageDescriptor *desc,
                            ProtobufCMessage **reply)
{
    natsMsg *m = NULL;
    wd_status st = WD_ERR_TIMEOUT;
    if (natsSubscription_NextMsg(&m, p->sub, 60000) == NATS_OK) {
        ProtobufCMessage *r = wd_bus_decode(desc, m);
        st = r ? wd_status_check(((Warden__V1__Ack *)r)->status) : WD_ERR_PROTO;
        if (r && reply)
            *reply = r;
        else if (r)
            protobuf_c_message_free_unpacked(r, NULL);
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(p->sub);
    natsSubscription_Destroy(p->sub);
    p->sub = NULL;
    return st;
}

/* Fills the server with game data: nested dirs, a symlink, files to
 * ignore. */
static void seed_files(const char *id)
{
    CU_ASSERT_FATAL(write_text(server_path(id, "config.txt"), "motd=hello\nmax=10\n"));
    CU_ASSERT_FATAL(write_text(server_path(id, "world/level.dat"), "level-1"));
    CU_ASSERT_FATAL(write_text(server_path(id, "world/region/r.0.0.mca"), "region data\n"));
    CU_ASSERT_FATAL(write_text(server_path(id, "server.log"), "a log line\n"));
    CU_ASSERT_FATAL(write_text(server_path(id, "world/debug.log"), "nested log\n"));
    CU_ASSERT_FATAL(write_text(server_path(id, "cache/blob.bin"), "cached"));
    CU_ASSERT_FATAL(symlink("config.txt", server_path(id, "link")) == 0);
    chmod(server_path(id, "config.txt"), 0640);
    /* Names that are not ASCII, and one longer than tar's 100 bytes. */
    CU_ASSERT_FATAL(write_text(server_path(id, "w\xc3\xb6rld \xff.txt"), "bytes"));
    char longname[300];
    snprintf(longname, sizeof longname, "deep/%0150d/%0120d.txt", 1, 2);
    CU_ASSERT_FATAL(write_text(server_path(id, longname), "long"));
}

/* ---- tests ---- */

static void test_create_list_restore_delete(void)
{
    char id[37], bid[37];
    wd_watch *w = new_game(id);
    seed_files(id);
    wd_uuid_new(bid);
    const char *ignore[] = {"*.log", "cache/", NULL};
    Warden__V1__BackupCreateReply *rep = NULL;
    CU_ASSERT_EQUAL_FATAL(create_backup(id, bid, ignore, &rep), WD_OK);
    CU_ASSERT_FATAL(rep != NULL);
    /* The reply describes the file on disk. */
    char sha[65];
    uint64_t size = 0;
    const char *archive = backup_path(id, bid, ".tar.gz");
    sha256_file(archive, sha, &size);
    CU_ASSERT_EQUAL(rep->size_bytes, size);
    CU_ASSERT(size > 0);
    CU_ASSERT_STRING_EQUAL(rep->sha256, sha);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    /* No temp file left behind. */
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s/.%s.tar.gz.tmp", backup_path(id, NULL, NULL), bid);
    CU_ASSERT_FALSE(exists(tmp));
    /* The checksum was written in place: no temp of it either. */
    CU_ASSERT(exists(backup_path(id, bid, ".sha256")));
    DIR *bd = opendir(backup_path(id, NULL, NULL));
    CU_ASSERT_FATAL(bd != NULL);
    for (struct dirent *de; (de = readdir(bd)) != NULL;)
        CU_ASSERT_PTR_NULL(strstr(de->d_name, ".tmp"));
    closedir(bd);

    /* What is in it: game files, the nested dir, the symlink as a symlink;
     * not what the ignore patterns name. */
    char *names = archive_names(archive);
    CU_ASSERT(has_line(names, "config.txt"));
    CU_ASSERT(has_line(names, "game.sh"));
    CU_ASSERT(has_line(names, "world/region/r.0.0.mca"));
    CU_ASSERT(has_line(names, "link -> config.txt"));
    CU_ASSERT_FALSE(has_line(names, "server.log"));
    CU_ASSERT_FALSE(has_line(names, "world/debug.log"));
    CU_ASSERT_FALSE(has_line(names, "cache"));
    CU_ASSERT_FALSE(has_line(names, "cache/blob.bin"));
    CU_ASSERT(strstr(names, "..") == NULL);
    free(names);

    /* Listed. */
    Warden__V1__BackupListReply *l = list_backups(id);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL_FATAL(l->n_backups, 1);
    CU_ASSERT_STRING_EQUAL(l->backups[0]->backup_id, bid);
    CU_ASSERT_EQUAL(l->backups[0]->size_bytes, size);
    CU_ASSERT_STRING_EQUAL(l->backups[0]->sha256, sha);
    CU_ASSERT(llabs(l->backups[0]->created_unix - wd_unix_ms() / 1000) < 60);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* The same id again: refused, the first one intact. */
    CU_ASSERT_EQUAL(create_backup(id, bid, NULL, NULL), WD_ERR_EXISTS);
    char sha2[65];
    uint64_t size2;
    sha256_file(archive, sha2, &size2);
    CU_ASSERT_STRING_EQUAL(sha2, sha);

    /* Change things, then restore with truncate: exactly the backup. */
    CU_ASSERT(write_text(server_path(id, "config.txt"), "motd=changed\n"));
    CU_ASSERT(wd_remove_tree(server_path(id, "world")) == WD_OK);
    CU_ASSERT(write_text(server_path(id, "extra.txt"), "new"));
    CU_ASSERT_EQUAL(restore_backup(id, bid, true), WD_OK);
    CU_ASSERT(file_is(server_path(id, "config.txt"), "motd=hello\nmax=10\n"));
    CU_ASSERT(file_is(server_path(id, "world/level.dat"), "level-1"));
    CU_ASSERT(file_is(server_path(id, "world/region/r.0.0.mca"), "region data\n"));
    CU_ASSERT(file_is(server_path(id, "w\xc3\xb6rld \xff.txt"), "bytes"));
    char longname[300];
    snprintf(longname, sizeof longname, "deep/%0150d/%0120d.txt", 1, 2);
    CU_ASSERT(file_is(server_path(id, longname), "long"));
    CU_ASSERT_FALSE(exists(server_path(id, "extra.txt")));
    CU_ASSERT_FALSE(exists(server_path(id, "server.log"))); /* ignored, so not restored */
    CU_ASSERT_FALSE(exists(server_path(id, "cache")));
    char target[64] = "";
    ssize_t tn = readlink(server_path(id, "link"), target, sizeof target - 1);
    CU_ASSERT_EQUAL(tn, 10);
    target[tn > 0 ? tn : 0] = '\0';
    CU_ASSERT_STRING_EQUAL(target, "config.txt");
    /* Modes come back; owners are the game's, like the server dir. */
    struct stat dir_sb, sb;
    CU_ASSERT_EQUAL(stat(server_path(id, NULL), &dir_sb), 0);
    CU_ASSERT_EQUAL(stat(server_path(id, "config.txt"), &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0640);
    CU_ASSERT_EQUAL(sb.st_uid, dir_sb.st_uid);
    CU_ASSERT_EQUAL(sb.st_gid, dir_sb.st_gid);
    CU_ASSERT_EQUAL(stat(server_path(id, "world/region/r.0.0.mca"), &sb), 0);
    CU_ASSERT_EQUAL(sb.st_uid, dir_sb.st_uid);
    CU_ASSERT_EQUAL(stat(server_path(id, "world/region"), &sb), 0);
    CU_ASSERT_EQUAL(sb.st_uid, dir_sb.st_uid);
    CU_ASSERT_EQUAL(lstat(server_path(id, "link"), &sb), 0);
    CU_ASSERT_EQUAL(sb.st_uid, dir_sb.st_uid);
    /* The game still runs from the restored files. */
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 10000));

    /* Restore is refused while the server runs, and changes nothing. */
    CU_ASSERT(write_text(server_path(id, "config.txt"), "motd=live\n"));
    CU_ASSERT_EQUAL(restore_backup(id, bid, true), WD_ERR_STATE);
    CU_ASSERT(file_is(server_path(id, "config.txt"), "motd=live\n"));
    /* A backup of a running server is fine. */
    char live[37];
    wd_uuid_new(live);
    CU_ASSERT_EQUAL(create_backup(id, live, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));

    /* Restore without truncate: files of the backup come back, others stay. */
    CU_ASSERT(write_text(server_path(id, "extra.txt"), "keep me"));
    CU_ASSERT_EQUAL(restore_backup(id, bid, false), WD_OK);
    CU_ASSERT(file_is(server_path(id, "config.txt"), "motd=hello\nmax=10\n"));
    CU_ASSERT(file_is(server_path(id, "extra.txt"), "keep me"));

    /* Upper-case ids name the same backup. */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(bid[i] >= 'a' && bid[i] <= 'f' ? bid[i] - 32 : bid[i]);
    CU_ASSERT_EQUAL(restore_backup(id, upper, false), WD_OK);

    /* Delete: gone from disk and from the list; twice is NOT_FOUND. */
    CU_ASSERT_EQUAL(delete_backup(id, bid), WD_OK);
    CU_ASSERT_FALSE(exists(archive));
    CU_ASSERT_FALSE(exists(backup_path(id, bid, ".sha256")));
    CU_ASSERT_EQUAL(delete_backup(id, bid), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(restore_backup(id, bid, true), WD_ERR_NOT_FOUND);
    l = list_backups(id);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(l->n_backups, 1);
    if (l->n_backups == 1)
        CU_ASSERT_STRING_EQUAL(l->backups[0]->backup_id, live);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    wd_watch_free(w);
}

static void test_bad_input(void)
{
    char id[37], bid[37], unknown[37];
    wd_watch *w = new_game(id);
    CU_ASSERT(write_text(server_path(id, "config.txt"), "original"));
    /* Ids that are not UUIDs never reach the file system. */
    const char *bad_ids[] = {"",
                             "not-a-uuid",
                             "../../../../etc/passwd",
                             "00000000-0000-0000-0000-00000000000/",
                             "00000000-0000-0000-0000-000000000000.tar.gz",
                             NULL};
    for (int i = 0; bad_ids[i]; i++) {
        CU_ASSERT_EQUAL(create_backup(id, bad_ids[i], NULL, NULL), WD_ERR_INVALID);
        CU_ASSERT_EQUAL(restore_backup(id, bad_ids[i], true), WD_ERR_INVALID);
        CU_ASSERT_EQUAL(delete_backup(id, bad_ids[i]), WD_ERR_INVALID);
    }
    /* Garbage bodies, for every op. */
    const char garbage[] = "\x0a\xff\xff\xff\xff\x0f";
    const char *ops[] = {"backup.create", "backup.restore", "backup.delete", "backup.list", NULL};
    for (int i = 0; ops[i]; i++)
        CU_ASSERT_EQUAL(wd_fx_raw(&fx, id, ops[i], garbage, sizeof garbage - 1), WD_ERR_INVALID);
    CU_ASSERT_EQUAL(wd_fx_raw(&fx, id, "backup.nope", "", 0), WD_ERR_UNSUPPORTED);
    /* Unknown backup; unknown server. */
    wd_uuid_new(unknown);
    CU_ASSERT_EQUAL(restore_backup(id, unknown, true), WD_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(delete_backup(id, unknown), WD_ERR_NOT_FOUND);
    wd_uuid_new(bid);
    CU_ASSERT_EQUAL(create_backup(unknown, bid, NULL, NULL), WD_ERR_NOT_FOUND);
    /* Too many or too long ignore patterns. */
    char *many[300];
    for (int i = 0; i < 299; i++)
        many[i] = (char *)"*.tmp";
    many[299] = NULL;
    CU_ASSERT_EQUAL(create_backup(id, bid, (const char *const *)many, NULL), WD_ERR_INVALID);
    /* Nothing was changed or created by any of it. */
    CU_ASSERT(file_is(server_path(id, "config.txt"), "original"));
    Warden__V1__BackupListReply *l = list_backups(id);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(l->n_backups, 0);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    wd_watch_free(w);
}

/* One job per server; the actor and other servers stay responsive. */
static void test_busy(void)
{
    char id[37], other[37], b1[37], b2[37];
    wd_watch *w = new_game(id);
    wd_watch *wo = new_game(other);
    /* Enough incompressible data that a job takes a noticeable time. */
    size_t big = 24u << 20;
    unsigned char *data = malloc(big);
    int fd = open("/dev/urandom", O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    for (size_t off = 0; off < big;) {
        ssize_t n = read(fd, data + off, big - off);
        CU_ASSERT_FATAL(n > 0);
        off += (size_t)n;
    }
    close(fd);
    CU_ASSERT_FATAL(write_file(server_path(id, "big.bin"), data, big));
    CU_ASSERT(write_text(server_path(id, "config.txt"), "before"));
    wd_uuid_new(b1);
    wd_uuid_new(b2);

    /* Requests sent back to back reach the server's actor in order, so the
     * ones after a create or restore find it running, however fast the
     * job is. */
    Warden__V1__BackupCreateRequest c1 = WARDEN__V1__BACKUP_CREATE_REQUEST__INIT;
    c1.backup_id = b1;
    Warden__V1__BackupCreateRequest c2 = WARDEN__V1__BACKUP_CREATE_REQUEST__INIT;
    c2.backup_id = b2;
    Warden__V1__BackupRestoreRequest r0 = WARDEN__V1__BACKUP_RESTORE_REQUEST__INIT;
    r0.backup_id = b1;
    pending p1, p2, p3, p4;
    send_async(&p1, id, "backup.create", &c1.base);
    send_async(&p2, id, "backup.create", &c2.base);
    send_async(&p3, id, "backup.restore", &r0.base);
    /* A delete without force does not wait: refused. */
    Warden__V1__DeleteRequest dr = WARDEN__V1__DELETE_REQUEST__INIT;
    send_async(&p4, id, "delete", &dr.base);
    /* While it runs: a second create and a restore are busy, the server
     * answers other requests, and so does another server. */
    CU_ASSERT_EQUAL(wait_async(&p2, &warden__v1__backup_create_reply__descriptor, NULL),
                    WD_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(wait_async(&p3, &warden__v1__ack__descriptor, NULL), WD_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(wait_async(&p4, &warden__v1__ack__descriptor, NULL), WD_ERR_UNAVAILABLE);
    CU_ASSERT(exists(server_path(id, "big.bin")));
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, NULL), WD_OK);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, other, ACT(START)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(wo, ST(RUNNING), 10000));
    Warden__V1__BackupCreateReply *rep = NULL;
    CU_ASSERT_EQUAL_FATAL(
        wait_async(&p1, &warden__v1__backup_create_reply__descriptor, (ProtobufCMessage **)&rep),
        WD_OK);
    char sha[65];
    uint64_t size;
    sha256_file(backup_path(id, b1, ".tar.gz"), sha, &size);
    CU_ASSERT_EQUAL(rep->size_bytes, size);
    CU_ASSERT_STRING_EQUAL(rep->sha256, sha);
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    /* The next one is accepted at once. */
    CU_ASSERT_EQUAL(create_backup(id, b2, NULL, NULL), WD_OK);

    /* A start while a restore runs is refused; after it, it works. */
    CU_ASSERT(write_text(server_path(id, "config.txt"), "after"));
    Warden__V1__BackupRestoreRequest r1 = WARDEN__V1__BACKUP_RESTORE_REQUEST__INIT;
    r1.backup_id = b1;
    r1.truncate = true;
    Warden__V1__PowerRequest start = WARDEN__V1__POWER_REQUEST__INIT;
    start.action = ACT(START);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    Warden__V1__BackupDeleteRequest del = WARDEN__V1__BACKUP_DELETE_REQUEST__INIT;
    del.backup_id = b1; /* the one being restored */
    send_async(&p1, id, "backup.restore", &r1.base);
    send_async(&p2, id, "power", &start.base);
    send_async(&p3, id, "install", &ir.base);
    send_async(&p4, id, "backup.delete", &del.base);
    Warden__V1__PowerReply *pr = NULL;
    CU_ASSERT_EQUAL(wait_async(&p2, &warden__v1__power_reply__descriptor, (ProtobufCMessage **)&pr),
                    WD_ERR_STATE);
    if (pr) {
        CU_ASSERT_EQUAL(pr->state, ST(OFFLINE));
        CU_ASSERT(strstr(pr->status->message, "restore") != NULL);
        protobuf_c_message_free_unpacked(&pr->base, NULL);
    }
    CU_ASSERT_EQUAL(wait_async(&p3, &warden__v1__ack__descriptor, NULL), WD_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(wait_async(&p4, &warden__v1__ack__descriptor, NULL), WD_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(wait_async(&p1, &warden__v1__ack__descriptor, NULL), WD_OK);
    CU_ASSERT(file_is(server_path(id, "config.txt"), "before"));
    char *back = NULL;
    size_t back_len = 0;
    CU_ASSERT_EQUAL(wd_read_file(server_path(id, "big.bin"), big + 1, &back, &back_len), WD_OK);
    CU_ASSERT(back_len == big && memcmp(back, data, big) == 0);
    free(back);
    free(data);
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(START)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(RUNNING), 10000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, id, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(w, ST(OFFLINE), 10000));
    CU_ASSERT_EQUAL(wd_fx_power(&fx, other, ACT(STOP)), WD_OK);
    CU_ASSERT(wd_watch_wait_state(wo, ST(OFFLINE), 10000));

    /* A forced delete while a backup runs cancels it and removes it all. */
    char b3[37];
    wd_uuid_new(b3);
    Warden__V1__BackupCreateRequest c3 = WARDEN__V1__BACKUP_CREATE_REQUEST__INIT;
    c3.backup_id = b3;
    send_async(&p1, id, "backup.create", &c3.base);
    dr.force = true;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "delete", &dr.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    wd_status st3 = wait_async(&p1, &warden__v1__backup_create_reply__descriptor, NULL);
    CU_ASSERT(st3 == WD_OK || st3 == WD_ERR_CLOSED || st3 == WD_ERR_UNAVAILABLE);
    CU_ASSERT_FALSE(exists(backup_path(id, NULL, NULL)));
    CU_ASSERT_FALSE(exists(server_path(id, NULL)));
    CU_ASSERT_EQUAL(wd_fx_info(&fx, id, NULL, NULL), WD_ERR_NOT_FOUND);
    wd_watch_free(w);
    wd_watch_free(wo);
}

typedef struct {
    const char *path;
    const char *symlink; /* NULL: a regular file */
    const char *content;
    const char *hardlink;
} fake_entry;

/* Writes a .tar.gz by hand, as an attacker would. */
static bool craft_archive(const char *path, const fake_entry *entries)
{
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK)
        return false;
    for (const fake_entry *f = entries; f->path; f++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, f->path);
        archive_entry_set_perm(e, 04755);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (f->symlink) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, f->symlink);
        } else if (f->hardlink) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, f->hardlink);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(f->content));
        }
        archive_write_header(a, e);
        if (!f->symlink && !f->hardlink)
            archive_write_data(a, f->content, strlen(f->content));
        archive_entry_free(e);
    }
    bool ok = archive_write_close(a) == ARCHIVE_OK;
    archive_write_free(a);
    return ok;
}

static void test_hostile_archives(void)
{
    char id[37], b1[37], b2[37], b3[37];
    wd_watch *w = new_game(id);
    CU_ASSERT(write_text(server_path(id, "marker.txt"), "untouched"));
    char outside[600], abs_target[700], escape[1300], pwned[700];
    snprintf(outside, sizeof outside, "%s", wd_h_tmpdir("outside"));
    snprintf(abs_target, sizeof abs_target, "%s/abs.txt", outside);
    snprintf(pwned, sizeof pwned, "%s/pwned.txt", outside);
    /* "../escape.txt" from the server dir lands in volumes/. */
    snprintf(escape, sizeof escape, "%s/volumes/escape.txt", fx.data_dir);
    wd_mkdir_p(backup_path(id, NULL, NULL), 0700);

    /* 1. Paths out of the server dir: refused before anything changes. */
    wd_uuid_new(b1);
    const fake_entry dotdot[] = {{.path = "ok.txt", .content = "ok"},
                                 {.path = "../escape.txt", .content = "escaped"},
                                 {.path = abs_target, .content = "escaped"},
                                 {0}};
    CU_ASSERT_FATAL(craft_archive(backup_path(id, b1, ".tar.gz"), dotdot));
    CU_ASSERT_EQUAL(restore_backup(id, b1, true), WD_ERR_INVALID);
    CU_ASSERT_FALSE(exists(escape));
    CU_ASSERT_FALSE(exists(abs_target));
    CU_ASSERT_FALSE(exists(server_path(id, "ok.txt")));
    CU_ASSERT(file_is(server_path(id, "marker.txt"), "untouched")); /* truncate never ran */
    const fake_entry only_abs[] = {{.path = abs_target, .content = "escaped"}, {0}};
    wd_uuid_new(b1);
    CU_ASSERT_FATAL(craft_archive(backup_path(id, b1, ".tar.gz"), only_abs));
    CU_ASSERT_EQUAL(restore_backup(id, b1, false), WD_ERR_INVALID);
    CU_ASSERT_FALSE(exists(abs_target));
    const fake_entry nested_dotdot[] = {{.path = "a/b/../../../escape.txt", .content = "x"}, {0}};
    wd_uuid_new(b1);
    CU_ASSERT_FATAL(craft_archive(backup_path(id, b1, ".tar.gz"), nested_dotdot));
    CU_ASSERT_EQUAL(restore_backup(id, b1, false), WD_ERR_INVALID);
    CU_ASSERT_FALSE(exists(escape));

    /* 2. A symlink pointing out, then a file through it; a hard link to a
     * host file; a set-uid bit. Nothing is written outside. */
    wd_uuid_new(b2);
    const fake_entry through[] = {{.path = "evil", .symlink = outside},
                                  {.path = "evil/pwned.txt", .content = "pwned"},
                                  {.path = "passwd", .hardlink = "/etc/passwd"},
                                  {.path = "suid.sh", .content = "#!/bin/sh\n"},
                                  {0}};
    CU_ASSERT_FATAL(craft_archive(backup_path(id, b2, ".tar.gz"), through));
    wd_status st = restore_backup(id, b2, true);
    CU_ASSERT(st == WD_OK || st == WD_ERR_IO);
    CU_ASSERT_FALSE(exists(pwned));
    CU_ASSERT_FALSE(exists(server_path(id, "passwd")));
    /* The symlink in the way was replaced by a real directory. */
    struct stat esb;
    CU_ASSERT_EQUAL(lstat(server_path(id, "evil"), &esb), 0);
    CU_ASSERT(S_ISDIR(esb.st_mode));
    CU_ASSERT(file_is(server_path(id, "evil/pwned.txt"), "pwned"));
    struct stat sb;
    if (stat(server_path(id, "suid.sh"), &sb) == 0)
        CU_ASSERT_EQUAL(sb.st_mode & 07000, 0);
    struct stat osb;
    CU_ASSERT_EQUAL(lstat(outside, &osb), 0);
    CU_ASSERT(S_ISDIR(osb.st_mode)); /* the outside dir itself untouched */

    /* 3. The game planted a symlink where the backup has a directory:
     * restoring without truncate replaces it, never writes through it. */
    CU_ASSERT(wd_remove_tree(server_path(id, "evil")) == WD_OK);
    CU_ASSERT(write_text(server_path(id, "world/level.dat"), "level"));
    wd_uuid_new(b3);
    CU_ASSERT_EQUAL(create_backup(id, b3, NULL, NULL), WD_OK);
    CU_ASSERT(wd_remove_tree(server_path(id, "world")) == WD_OK);
    CU_ASSERT_EQUAL(symlink(outside, server_path(id, "world")), 0);
    CU_ASSERT_EQUAL(restore_backup(id, b3, false), WD_OK);
    CU_ASSERT_FALSE(exists(abs_target));
    char out_level[800];
    snprintf(out_level, sizeof out_level, "%s/level.dat", outside);
    CU_ASSERT_FALSE(exists(out_level));
    CU_ASSERT(file_is(server_path(id, "world/level.dat"), "level"));
    CU_ASSERT_EQUAL(lstat(server_path(id, "world"), &sb), 0);
    CU_ASSERT(S_ISDIR(sb.st_mode));

    /* 4. A damaged backup (checksum mismatch, truncated gzip): refused,
     * nothing changed. */
    CU_ASSERT(write_text(server_path(id, "marker.txt"), "still here"));
    FILE *f = fopen(backup_path(id, b3, ".tar.gz"), "ab");
    CU_ASSERT_FATAL(f != NULL);
    fputc('x', f);
    fclose(f);
    CU_ASSERT_EQUAL(restore_backup(id, b3, true), WD_ERR_INVALID);
    CU_ASSERT(file_is(server_path(id, "marker.txt"), "still here"));
    CU_ASSERT_EQUAL(truncate(backup_path(id, b3, ".tar.gz"), 40), 0);
    unlink(backup_path(id, b3, ".sha256"));
    CU_ASSERT_EQUAL(restore_backup(id, b3, true), WD_ERR_INVALID);
    CU_ASSERT(file_is(server_path(id, "marker.txt"), "still here"));
    CU_ASSERT_FALSE(exists(escape));
    wd_watch_free(w);
}

static void test_delete_server_removes_backups(void)
{
    char id[37], bid[37];
    wd_watch *w = new_game(id);
    wd_uuid_new(bid);
    CU_ASSERT_EQUAL_FATAL(create_backup(id, bid, NULL, NULL), WD_OK);
    CU_ASSERT(exists(backup_path(id, bid, ".tar.gz")));
    Warden__V1__DeleteRequest dr = WARDEN__V1__DELETE_REQUEST__INIT;
    CU_ASSERT_EQUAL(wd_fx_request(&fx, id, "delete", &dr.base, &warden__v1__ack__descriptor, NULL),
                    WD_OK);
    CU_ASSERT_FALSE(exists(backup_path(id, NULL, NULL)));
    CU_ASSERT_EQUAL(create_backup(id, bid, NULL, NULL), WD_ERR_NOT_FOUND);
    wd_watch_free(w);
}

static void test_clean_exit(void)
{
    CU_ASSERT(wd_fx_agent_clean_exit(&fx));
}

int main(void)
{
    static const wd_h_case cases[] = {
        {"create (ignore, symlinks, sha256), list, restore with and without truncate, delete",
         test_create_list_restore_delete},
        {"bad ids, garbage, unknown backups and servers: clear errors, nothing changed",
         test_bad_input},
        {"one job per server: busy, start refused while restoring, others responsive", test_busy},
        {"hostile archives (.., absolute, symlink out, hard link) write nothing outside",
         test_hostile_archives},
        {"deleting a server deletes its backups", test_delete_server_removes_backups},
        {"the agent exits cleanly; no sanitizer reports", test_clean_exit},
        {NULL, NULL}};
    wd_h_suite("backup", suite_init, suite_clean, cases);
    return wd_h_run();
}
