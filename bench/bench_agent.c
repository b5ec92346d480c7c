/* Agent benchmarks. Starts a private nats-server and warden-agent on
 * loopback (the integration fixture) and prints:
 *
 *   1. raw NATS request/reply round trip (the floor)
 *   2. console line latency: game stdout -> a NATS subscriber
 *   3. console throughput of one server, and whether anything was dropped
 *   4. command round trip: bus request -> game stdin -> echoed line back
 *   5. start request -> process spawned (the power reply)
 *   6. agent RSS and CPU with N idle game servers
 *
 * Figures, not pass/fail: see docs/benchmarks.md for the targets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_fixture.h"
#include "subject.h"
#include "util.h"

#define ACT(x) WARDEN__V1__POWER_REQUEST__ACTION__##x
#define ST(x) WARDEN__V1__SERVER_STATE__SERVER_STATE_##x

static wd_fx fx;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *us, int n)
{
    qsort(us, (size_t)n, sizeof *us, cmp_i64);
    printf("%-44s n=%-5d p50=%7.1f us  p99=%7.1f us  max=%8.1f us\n", what, n,
           (double)us[n / 2], (double)us[(int)(n * 0.99)], (double)us[n - 1]);
}

static void bench_nats_floor(void)
{
    wd_bus_cfg cfg = wd_bus_cfg_defaults();
    cfg.servers = fx.nats.url;
    cfg.send_asap = true;
    wd_bus *a = NULL;
    wd_bus_connect(&a, &cfg);
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(a), "bench.echo");
    natsConnection_Flush(wd_bus_nats(a));
    enum { N = 2000 };
    static int64_t us[N];
    /* A responder thread would add noise: answer inline from a second
     * connection by polling the sync subscription between requests. */
    wd_bus *b = NULL;
    wd_bus_connect(&b, &cfg);
    for (int i = 0; i < N; i++) {
        natsInbox *inbox = NULL;
        natsInbox_Create(&inbox);
        natsSubscription *rs = NULL;
        natsConnection_SubscribeSync(&rs, wd_bus_nats(b), inbox);
        int64_t t0 = wd_mono_us();
        natsConnection_PublishRequestString(wd_bus_nats(b), "bench.echo", inbox, "x");
        natsMsg *m = NULL;
        natsSubscription_NextMsg(&m, sub, 1000);
        natsConnection_PublishString(wd_bus_nats(a), natsMsg_GetReply(m), "y");
        natsMsg_Destroy(m);
        natsMsg *r = NULL;
        natsSubscription_NextMsg(&r, rs, 1000);
        us[i] = wd_mono_us() - t0;
        natsMsg_Destroy(r);
        natsSubscription_Destroy(rs);
        natsInbox_Destroy(inbox);
    }
    report("raw NATS request/reply (floor)", us, N);
    natsSubscription_Destroy(sub);
    wd_bus_destroy(&a);
    wd_bus_destroy(&b);
}

static bool create_and_start(const char *tpl, Warden__V1__Limits *limits, char id[37],
                             wd_watch **w)
{
    if (wd_fx_create_ex(&fx, tpl, NULL, limits, id) != WD_OK)
        return false;
    *w = wd_watch_start(&fx, id);
    Warden__V1__InstallRequest ir = WARDEN__V1__INSTALL_REQUEST__INIT;
    wd_fx_request(&fx, id, "install", &ir.base, &warden__v1__ack__descriptor, NULL);
    wd_watch_wait_state(*w, ST(OFFLINE), 20000);
    if (wd_fx_power(&fx, id, ACT(START)) != WD_OK)
        return false;
    return wd_watch_wait_state(*w, ST(RUNNING), 20000);
}

/* Lines carry the game's wall-clock time in ns (date +%s%N). */
static void bench_line_latency(void)
{
    const char *tpl = wd_h_write_tmp(
        "ticker.json", "{\"format\":\"warden/v1\",\"id\":\"ticker\",\"name\":\"ticker\","
                  "\"startup\":\"/bin/sh -c 'echo Ready; while :; do date +%s%N; sleep 0.005; "
                  "done'\",\"done\":\"Ready\",\"stop\":{\"command\":\"^C\"}}");
    char id[37];
    wd_watch *w = NULL;
    if (!create_and_start(tpl, NULL, id, &w)) {
        printf("line latency: could not start the ticker\n");
        return;
    }
    enum { N = 1000 };
    static int64_t us[N];
    int n = 0;
    char subj[WD_SUBJECT_MAX];
    wd_subj_server_event(subj, sizeof subj, id, "console");
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(fx.bus), subj);
    while (n < N) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        Warden__V1__ConsoleChunk *c = (Warden__V1__ConsoleChunk *)wd_bus_decode(
            &warden__v1__console_chunk__descriptor, m);
        natsMsg_Destroy(m);
        for (size_t i = 0; c && i < c->n_lines && n < N; i++) {
            char buf[32];
            size_t len = c->lines[i].len < 31 ? c->lines[i].len : 31;
            if (len)
                memcpy(buf, c->lines[i].data, len);
            buf[len] = '\0';
            long long ns = strtoll(buf, NULL, 10);
            if (ns > 1000000000000000000LL)
                us[n++] = (now_ns - ns) / 1000;
        }
        if (c)
            protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    natsSubscription_Destroy(sub);
    if (n > 0)
        report("console line latency (stdout -> subscriber)", us, n);
    wd_fx_power(&fx, id, ACT(KILL));
    wd_watch_wait_state(w, ST(OFFLINE), 10000);
    wd_watch_free(w);
}

static void bench_throughput_and_rtt(void)
{
    char id[37];
    wd_watch *w = NULL;
    /* No rate limit here: this measures what the pipeline itself carries. */
    Warden__V1__Limits unlimited = WARDEN__V1__LIMITS__INIT;
    unlimited.console_lines_per_second = 100000000;
    if (!create_and_start(wd_fx_template("testgame"), &unlimited, id, &w)) {
        printf("throughput: could not start the test game\n");
        return;
    }
    /* Command round trip: request -> stdin -> echoed line seen by a
     * subscriber blocked in NextMsg (no polling in the measurement). */
    enum { N = 500 };
    static int64_t us[N];
    char subj[WD_SUBJECT_MAX];
    wd_subj_server_event(subj, sizeof subj, id, "console");
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, wd_bus_nats(fx.bus), subj);
    natsConnection_Flush(wd_bus_nats(fx.bus));
    int n = 0;
    for (int i = 0; i < N; i++) {
        char cmd[96], want[64];
        snprintf(want, sizeof want, "rtt-%d-ok", i);
        snprintf(cmd, sizeof cmd, "echo %s", want);
        int64_t t0 = wd_mono_us();
        if (wd_fx_send(&fx, id, cmd) != WD_OK)
            break;
        bool seen = false;
        while (!seen) {
            natsMsg *m = NULL;
            if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK)
                break;
            Warden__V1__ConsoleChunk *c = (Warden__V1__ConsoleChunk *)wd_bus_decode(
                &warden__v1__console_chunk__descriptor, m);
            natsMsg_Destroy(m);
            /* The output line itself, not the terminal's echo of the command. */
            for (size_t k = 0; c && k < c->n_lines && !seen; k++)
                seen = c->lines[k].len == strlen(want) &&
                       memcmp(c->lines[k].data, want, c->lines[k].len) == 0;
            if (c)
                protobuf_c_message_free_unpacked(&c->base, NULL);
        }
        if (!seen)
            break;
        us[n++] = wd_mono_us() - t0;
    }
    natsSubscription_Destroy(sub);
    if (n > 0)
        report("command round trip (request -> echo seen)", us, n);

    /* Throughput: one burst of lines as fast as the game can print them. */
    const long lines = 200000;
    size_t before = wd_watch_count_prefix(w, "flood line");
    uint64_t dropped_before = wd_watch_dropped(w);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "flood %ld", lines);
    int64_t t0 = wd_mono_us();
    wd_fx_send(&fx, id, cmd);
    size_t got = 0;
    int64_t last_change = wd_mono_us();
    while (got < (size_t)lines && wd_mono_us() - last_change < 3000000) {
        size_t now = wd_watch_count_prefix(w, "flood line") - before;
        if (now != got) {
            got = now;
            last_change = wd_mono_us();
        }
        usleep(2000);
    }
    double secs = (double)(last_change - t0) / 1e6;
    printf("%-44s %ld lines in %.2f s = %.0f lines/s, received %zu, dropped %llu\n",
           "console throughput (one server)", lines, secs, (double)got / secs, got,
           (unsigned long long)(wd_watch_dropped(w) - dropped_before));
    wd_fx_power(&fx, id, ACT(KILL));
    wd_watch_wait_state(w, ST(OFFLINE), 10000);
    wd_watch_free(w);
}

static void bench_start_latency(void)
{
    const char *tpl = wd_h_write_tmp(
        "idle.json", "{\"format\":\"warden/v1\",\"id\":\"idle\",\"name\":\"idle\","
                "\"startup\":\"/bin/sh -c 'echo Ready; exec sleep 100000'\",\"done\":\"Ready\","
                "\"stop\":{\"command\":\"^C\"}}");
    enum { N = 20 };
    static int64_t us[N];
    for (int i = 0; i < N; i++) {
        char id[37];
        if (wd_fx_create(&fx, tpl, NULL, id) != WD_OK)
            return;
        wd_watch *w = wd_watch_start(&fx, id);
        int64_t t0 = wd_mono_us();
        wd_fx_power(&fx, id, ACT(START)); /* replies once the process is spawned */
        us[i] = wd_mono_us() - t0;
        wd_watch_wait_state(w, ST(RUNNING), 10000);
        wd_fx_power(&fx, id, ACT(KILL));
        wd_watch_wait_state(w, ST(OFFLINE), 10000);
        Warden__V1__DeleteRequest dr = WARDEN__V1__DELETE_REQUEST__INIT;
        wd_fx_request(&fx, id, "delete", &dr.base, &warden__v1__ack__descriptor, NULL);
        wd_watch_free(w);
    }
    report("start request -> process spawned", us, N);
}

static long agent_rss_kb(void)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%d/status", (int)fx.agent_pid);
    if (wd_read_file(path, 65536, &text, NULL) != WD_OK)
        return -1;
    char *p = strstr(text, "VmRSS:");
    long kb = p ? strtol(p + 6, NULL, 10) : -1;
    free(text);
    return kb;
}

static double agent_cpu_seconds(void)
{
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)fx.agent_pid);
    if (wd_read_file(path, 65536, &text, NULL) != WD_OK)
        return 0;
    char *p = strrchr(text, ')');
    unsigned long ut = 0, stt = 0;
    if (p)
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt);
    free(text);
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static void bench_idle_servers(int count)
{
    const char *tpl = wd_h_write_tmp(
        "idle2.json", "{\"format\":\"warden/v1\",\"id\":\"idle\",\"name\":\"idle\","
                 "\"startup\":\"/bin/sh -c 'echo Ready; exec sleep 100000'\",\"done\":\"Ready\","
                 "\"stop\":{\"command\":\"^C\"}}");
    long rss0 = agent_rss_kb();
    for (int i = 0; i < count; i++) {
        char id[37];
        if (wd_fx_create(&fx, tpl, NULL, id) != WD_OK || wd_fx_power(&fx, id, ACT(START)) != WD_OK) {
            printf("idle servers: start %d failed: %s\n", i, wd_err_msg());
            return;
        }
    }
    sleep(3);
    double c0 = agent_cpu_seconds();
    sleep(10);
    double c1 = agent_cpu_seconds();
    long rss = agent_rss_kb();
    printf("%-44s %d servers: agent RSS %.1f MB (%.1f MB before), CPU %.2f%% of one core "
           "(stats every %d ms)\n",
           "agent footprint with idle servers", count, rss / 1024.0, rss0 / 1024.0,
           (c1 - c0) * 10.0, wd_fx_stats_interval_ms);
}

int main(int argc, char **argv)
{
    long idle = 50;
    if (argc > 1 && !wd_parse_long(argv[1], 1, 1000, &idle)) {
        fprintf(stderr, "usage: bench_agent [IDLE_SERVERS (1..1000, default 50)]\n");
        return 2;
    }
    wd_fx_stats_interval_ms = 2000; /* the agent's default */
    if (!wd_fx_start(&fx)) {
        fprintf(stderr, "bench: could not start nats-server and the agent\n");
        return 1;
    }
    printf("Warden agent benchmarks (loopback, %ld cores)\n", sysconf(_SC_NPROCESSORS_ONLN));
    bench_nats_floor();
    bench_line_latency();
    bench_throughput_and_rtt();
    bench_start_latency();
    bench_idle_servers((int)idle);
    wd_fx_stop(&fx);
    wd_h_stop_all();
    return 0;
}
