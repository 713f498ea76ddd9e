/*
 * test_backup.c - backups and restores that lose no evidence: loss statements and
 * witnesses accepting them (a real fork still refused), the consistent copy of a
 * log, the held-heads files, the ustar writer and its strict reader, the manifest,
 * and a gateway directory backed up and restored whole (checked, refused when
 * damaged or when the target is not empty).
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "certs/pki.h"
#include "gateway/audit/audit.h"
#include "gateway/backup/backup.h"
#include "gateway/backup/tar.h"
#include "gateway/config/config.h"
#include "gateway/store/store.h"

static char scratch[PATH_MAX];
static EVP_PKEY *key_o, *key_w; /* the log owner's and the witness's keys */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static const char *
path_in(const char *name)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    ck_assert_int_lt(snprintf(b, PATH_MAX, "%s/%s", scratch, name), PATH_MAX);
    return b;
}

static const char *
fresh_dir(const char *name)
{
    const char *p = path_in(name);
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    return p;
}

static bg_audit_event
event(uint64_t i, int variant)
{
    bg_audit_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = BG_AUDIT_REQUEST_RECEIVED;
    ev.time_ms = 1760000000000LL + (int64_t)i;
    snprintf(ev.peer, sizeof ev.peer, "440300");
    memset(ev.request_id, (int)i, sizeof ev.request_id);
    snprintf(ev.purpose, sizeof ev.purpose, "supervision");
    snprintf(ev.reason, sizeof ev.reason, "event %d%s", (int)i, variant ? " again" : "");
    return ev;
}

/* A log of 440100 in dir with events first..first+n (variant), and a signed head. */
static bg_audit_head
grow_log(const char *dir, uint64_t n, int variant, int64_t ts)
{
    bg_audit_log *log = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_open(&log, dir, "440100", BG_AUDIT_CREATE, NULL, &err), BG_OK);
    for (uint64_t i = bg_audit_size(log); i < n; i++) {
        bg_audit_event ev = event(i, variant);
        ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_OK);
    }
    bg_audit_head h;
    ck_assert_int_eq(bg_audit_sign_head(log, key_o, ts, &h, &err), BG_OK);
    bg_audit_close(log);
    return h;
}

static void
proof(const char *dir, uint64_t from, uint64_t to, bg_audit_hash p[BG_AUDIT_PROOF_MAX], size_t *n)
{
    bg_audit_log *log = NULL;
    ck_assert_int_eq(bg_audit_open(&log, dir, "440100", BG_AUDIT_READ_ONLY, NULL, NULL), BG_OK);
    ck_assert_int_eq(bg_audit_consistency_proof(log, from, to, p, n, NULL), BG_OK);
    bg_audit_close(log);
}

/* --- loss statements --- */

START_TEST(loss_statement_round_trip_and_forgery)
{
    const char *dir = fresh_dir("loss1");
    bg_audit_head h = grow_log(dir, 10, 0, 1000);
    bg_audit_hash root = {1};
    bg_audit_loss *l = malloc(sizeof *l), *d = malloc(sizeof *d);
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 6, root, &h, 1, 2000, l, &err), BG_OK);
    uint8_t enc[BG_AUDIT_SIGNED_LOSS_MAX];
    size_t len;
    ck_assert_int_eq(bg_audit_loss_encode(l, enc, &len, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_decode(enc, len, d, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_verify(d, key_o, NULL, &err), BG_OK);
    ck_assert(bg_audit_loss_covers(d, &h));
    ck_assert_uint_eq(bg_audit_loss_lost_to(d), 10);
    ck_assert_uint_eq(d->base_size, 6);
    /* Another key, an edited field, a flipped byte: refused. */
    ck_assert_int_eq(bg_audit_loss_verify(d, key_w, NULL, &err), BG_ECRYPTO);
    d->base_size = 5;
    ck_assert_int_eq(bg_audit_loss_verify(d, key_o, NULL, &err), BG_ECRYPTO);
    for (size_t i = 0; i < len; i++) {
        enc[i] ^= 0x20;
        if (bg_audit_loss_decode(enc, len, d, &err) == BG_OK)
            ck_assert_int_ne(bg_audit_loss_verify(d, key_o, NULL, &err), BG_OK);
        enc[i] ^= 0x20;
    }
    /* A head of another city cannot be given up in 440100's name. */
    bg_audit_head other = h;
    snprintf(other.origin, sizeof other.origin, "440300");
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 6, root, &other, 1, 2000, l, &err),
                     BG_EINVAL);
    free(l);
    free(d);
}
END_TEST

/* A witness holds the head of size 10 of the first history; the owner is restored
 * with the first 6 leaves and logs 3 different ones. */
START_TEST(witness_accepts_a_loss_statement_and_nothing_else)
{
    const char *a = fresh_dir("hist_a"), *b = fresh_dir("hist_b");
    const char *wdir = fresh_dir("witness");
    bg_audit_head h10 = grow_log(a, 10, 0, 1000);
    grow_log(b, 6, 0, 900);
    bg_audit_head h9 = grow_log(b, 9, 1, 3000);
    bg_audit_witness *w = NULL;
    bg_err err = {0};
    bg_audit_verdict v;
    bg_audit_cosig c;
    ck_assert_int_eq(bg_audit_witness_open(&w, wdir, "440300", 0, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440100", &h10, NULL, 0, 1, &c, &v, &err),
                     BG_OK);
    bg_audit_hash p[BG_AUDIT_PROOF_MAX], base_root;
    size_t np = 0;
    proof(b, 6, 9, p, &np);
    bg_audit_log *log = NULL;
    ck_assert_int_eq(bg_audit_open(&log, b, "440100", BG_AUDIT_READ_ONLY, NULL, NULL), BG_OK);
    ck_assert_int_eq(bg_audit_root(log, 6, base_root, NULL), BG_OK);
    bg_audit_close(log);
    bg_audit_loss *l = malloc(sizeof *l);
    /* Without a statement the new history is a fork (the existing check). */
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440100", &h9, NULL, 0, 2, &c, &v, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(v, BG_AUDIT_W_SHRUNK);
    /* A statement that gives up another head says nothing to this witness. */
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 6, base_root, &h9, 1, 2500, l, &err),
                     BG_OK);
    ck_assert_int_eq(bg_audit_witness_loss(w, key_w, "440100", l, &h9, p, np, 3, &c, &v, &err),
                     BG_ENOTFOUND);
    /* The right statement with a head that does not extend its base: a fork. */
    bg_audit_hash wrong = {7};
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 6, wrong, &h10, 1, 2500, l, &err), BG_OK);
    ck_assert_int_eq(bg_audit_witness_loss(w, key_w, "440100", l, &h9, p, np, 4, &c, &v, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(v, BG_AUDIT_W_INCONSISTENT);
    /* The right statement and base: an acknowledged loss, cosigned. */
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 6, base_root, &h10, 1, 2500, l, &err),
                     BG_OK);
    ck_assert_int_eq(bg_audit_witness_loss(w, key_w, "440100", l, &h9, p, np, 5, &c, &v, &err),
                     BG_OK);
    ck_assert_int_eq(bg_audit_cosig_verify(&c, key_w, NULL, &err), BG_OK);
    ck_assert_uint_eq(bg_audit_witness_loss_count(w), 1);
    size_t conflicts = bg_audit_witness_conflict_count(w);
    bg_audit_witness_close(w);
    /* Replayed from witness.log: the new head is the one later heads must extend. */
    ck_assert_int_eq(bg_audit_witness_open(&w, wdir, "440300", 0, NULL, &err), BG_OK);
    ck_assert_uint_eq(bg_audit_witness_loss_count(w), 1);
    ck_assert_uint_eq(bg_audit_witness_conflict_count(w), conflicts);
    bg_audit_head last;
    ck_assert_int_eq(bg_audit_witness_last(w, "440100", &last, &err), BG_OK);
    ck_assert_uint_eq(last.size, 9);
    bg_audit_head h12 = grow_log(b, 12, 1, 4000);
    proof(b, 9, 12, p, &np);
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440100", &h12, p, np, 6, &c, &v, &err),
                     BG_OK);
    /* The statement cannot be used again for the old head: it is not held any more. */
    ck_assert_int_eq(bg_audit_witness_loss(w, key_w, "440100", l, &h9, p, 0, 7, &c, &v, &err),
                     BG_ENOTFOUND);
    bg_audit_peer_info info;
    ck_assert_int_eq(bg_audit_witness_peer(w, 0, &info, &err), BG_OK);
    ck_assert_uint_eq(info.losses, 1);
    bg_audit_witness_close(w);
    free(l);
}
END_TEST

START_TEST(losses_log_and_held_files)
{
    const char *dir = fresh_dir("losses");
    bg_audit_head h = grow_log(dir, 4, 0, 1000);
    bg_audit_hash root = {3};
    bg_audit_loss *l = malloc(sizeof *l), *got = malloc(sizeof *got);
    bg_err err = {0};
    size_t n = 9;
    ck_assert_int_eq(bg_audit_loss_latest(dir, "440100", got, &n, &err), BG_ENOTFOUND);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 2, root, &h, 1, 5, l, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_append(dir, l, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_make(key_o, "440100", 3, root, &h, 1, 6, l, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_append(dir, l, &err), BG_OK);
    ck_assert_int_eq(bg_audit_loss_latest(dir, "440100", got, &n, &err), BG_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(got->base_size, 3);
    ck_assert_int_eq(bg_audit_loss_latest(dir, "440300", got, &n, &err), BG_EPROTO);
    /* behind.txt / accept-loss.txt */
    bg_audit_held held[2] = {{.witness = "440300", .head = h}, {.witness = "440600", .head = h}};
    bg_audit_held back[4];
    const char *f = path_in("losses/behind.txt");
    ck_assert_int_eq(bg_audit_held_write(f, "a note\non two lines", held, 2, &err), BG_OK);
    ck_assert_int_eq(bg_audit_held_read(f, "440100", back, 4, &n, &err), BG_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(back[1].witness, "440600");
    ck_assert_mem_eq(back[0].head.head, h.head, h.head_len);
    ck_assert_int_eq(bg_audit_held_read(f, "440300", back, 4, &n, &err), BG_EPROTO);
    FILE *fp = fopen(f, "a");
    fprintf(fp, "held 440300 4 1000 zz\n");
    fclose(fp);
    ck_assert_int_eq(bg_audit_held_read(f, "440100", back, 4, &n, &err), BG_EPROTO);
    ck_assert_int_eq(bg_audit_held_read(path_in("losses/none.txt"), "440100", back, 4, &n, &err),
                     BG_ENOTFOUND);
    free(l);
    free(got);
}
END_TEST

START_TEST(copy_of_a_log_stops_at_a_record_and_checks_heads)
{
    const char *src = fresh_dir("copy_src");
    grow_log(src, 5, 0, 1000);
    bg_audit_head h = grow_log(src, 8, 0, 2000);
    /* A record being written: half of one appended. */
    int fd = open(path_in("copy_src/leaves.log"), O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\0\0\0\x40half", 8), 8);
    close(fd);
    const char *dst = path_in("copy_dst");
    nftw(dst, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    bg_audit_copy_report rep;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_copy(src, dst, "440100", &rep, &err), BG_OK);
    ck_assert_uint_eq(rep.leaves, 8);
    ck_assert_uint_eq(rep.heads, 2);
    ck_assert(rep.has_head);
    ck_assert_mem_eq(rep.latest.root, h.root, BG_AUDIT_HASH_LEN);
    /* The copy opens read-write as a log (heads consistent, no torn tail to repair). */
    bg_audit_log *log = NULL;
    bg_audit_open_report orep;
    ck_assert_int_eq(bg_audit_open(&log, dst, "440100", 0, &orep, &err), BG_OK);
    ck_assert_uint_eq(orep.dropped_bytes, 0);
    bg_audit_close(log);
    /* Into a directory that holds a log already: refused. */
    ck_assert_int_ne(bg_audit_copy(src, dst, "440100", &rep, &err), BG_OK);
}
END_TEST

/* --- tar --- */

static const char *long_name = "gw/data/a-directory-with-a-name-long-enough/that-the-whole-path-"
                               "needs-the-ustar-prefix-field/file.bin";

static void
write_tar(const char *path, bool gz)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    bg_tar_writer *w = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_tar_writer_new(&w, fd, gz, &err), BG_OK);
    ck_assert_int_eq(bg_tar_add_dir(w, "gw", 0700, 1, 0, 0, &err), BG_OK);
    ck_assert_int_eq(bg_tar_add_data(w, "gw/a.txt", 0640, 2, 0, 0, "hello", 5, &err), BG_OK);
    uint8_t big[1500];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)i;
    ck_assert_int_eq(bg_tar_add_data(w, long_name, 0600, 3, 0, 0, big, sizeof big, &err), BG_OK);
    ck_assert_int_eq(bg_tar_finish(w, &err), BG_OK);
}

START_TEST(tar_round_trip_plain_and_gzip)
{
    for (int gz = 0; gz < 2; gz++) {
        const char *p = path_in(gz ? "t.tar.gz" : "t.tar");
        write_tar(p, gz);
        bg_tar_reader *r = NULL;
        bg_tar_entry e;
        bg_err err = {0};
        char buf[4096];
        size_t got;
        ck_assert_int_eq(bg_tar_reader_open(&r, p, &err), BG_OK);
        ck_assert_int_eq(bg_tar_next(r, &e, &err), BG_OK);
        ck_assert(e.is_dir);
        ck_assert_str_eq(e.name, "gw");
        ck_assert_int_eq(bg_tar_next(r, &e, &err), BG_OK);
        ck_assert_str_eq(e.name, "gw/a.txt");
        ck_assert_uint_eq(e.mode, 0640);
        ck_assert_int_eq(bg_tar_read(r, buf, sizeof buf, &got, &err), BG_OK);
        ck_assert_mem_eq(buf, "hello", got);
        ck_assert_int_eq(bg_tar_next(r, &e, &err), BG_OK);
        ck_assert_str_eq(e.name, long_name);
        ck_assert_uint_eq(e.size, 1500);
        ck_assert_int_eq(bg_tar_read(r, buf, 1000, &got, &err), BG_OK);
        ck_assert_uint_eq(got, 1000);
        ck_assert_uint_eq((uint8_t)buf[999], 999 % 256);
        ck_assert_int_eq(bg_tar_next(r, &e, &err), BG_ENOTFOUND); /* the rest skipped */
        bg_tar_reader_close(r);
    }
    /* What a standard tar makes of it. */
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "tar -tzf '%s' | grep -qx '%s'", path_in("t.tar.gz"), long_name);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Reads every entry of p; the first error. */
static int
read_all(const char *p)
{
    bg_tar_reader *r = NULL;
    bg_tar_entry e;
    bg_err err = {0};
    int rc = bg_tar_reader_open(&r, p, &err);
    while (rc == BG_OK)
        rc = bg_tar_next(r, &e, &err);
    bg_tar_reader_close(r);
    return rc;
}

START_TEST(tar_reader_refuses_what_it_does_not_write)
{
    const char *p = path_in("bad.tar");
    write_tar(p, false);
    ck_assert_int_eq(read_all(p), BG_ENOTFOUND);
    size_t len;
    uint8_t *b;
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    rewind(f);
    b = malloc(len);
    ck_assert_uint_eq(fread(b, 1, len, f), len);
    fclose(f);
    /* A flipped name byte breaks the checksum; a symlink (with its checksum fixed). */
    const struct {
        size_t off;
        uint8_t val;
        bool fix;
    } cases[] = {{512 + 3, 'X', false}, {512 + 156, '2', true}, {512 + 257, 'x', true}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *m = malloc(len);
        memcpy(m, b, len);
        m[cases[c].off] = cases[c].val;
        if (cases[c].fix) {
            unsigned sum = 0;
            memset(m + 512 + 148, ' ', 8);
            for (size_t i = 0; i < 512; i++)
                sum += m[512 + i];
            snprintf((char *)m + 512 + 148, 8, "%06o", sum);
        }
        f = fopen(p, "wb");
        fwrite(m, 1, len, f);
        fclose(f);
        ck_assert_int_eq(read_all(p), BG_EPROTO);
        free(m);
    }
    /* Cut short inside a file's data. */
    f = fopen(p, "wb");
    fwrite(b, 1, 1024 + 200, f);
    fclose(f);
    ck_assert_int_eq(read_all(p), BG_EPROTO);
    free(b);
}
END_TEST

/* --- manifest --- */

START_TEST(manifest_round_trip_and_strictness)
{
    bg_backup_manifest m, back;
    memset(&m, 0, sizeof m);
    bg_err err = {0};
    snprintf(m.city, sizeof m.city, "440100");
    snprintf(m.name, sizeof m.name, "Guang zhou");
    snprintf(m.top, sizeof m.top, "gz");
    m.created_ms = 1767225600000;
    m.has_log = m.has_head = m.has_store = true;
    m.log_leaves = 12;
    m.log_heads = 2;
    m.head_size = 11;
    m.head_root[0] = 0xab;
    m.enterprises = 7;
    bg_backup_file *e;
    ck_assert_int_eq(bg_backup_manifest_add(&m, "data", &e, &err), BG_OK);
    e->is_dir = true;
    e->mode = 0700;
    ck_assert_int_eq(bg_backup_manifest_add(&m, "data/a file", &e, &err), BG_OK);
    e->mode = 0600;
    e->size = 3;
    e->sha256[31] = 1;
    ck_assert_int_eq(bg_backup_manifest_add(&m, "data/../x", &e, &err), BG_EINVAL);
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_backup_manifest_format(&m, &text, &len, &err), BG_OK);
    ck_assert_int_eq(bg_backup_manifest_parse(text, len, &back, &err), BG_OK);
    ck_assert_str_eq(back.name, "Guang zhou");
    ck_assert_uint_eq(back.nfiles, 2);
    ck_assert_str_eq(back.files[1].path, "data/a file");
    ck_assert_uint_eq(back.files[1].sha256[31], 1);
    ck_assert_uint_eq(back.head_size, 11);
    ck_assert_uint_eq(back.head_root[0], 0xab);
    bg_backup_manifest_free(&back);
    const char *bad[] = {
        "baygate-backup 2\n", "extra line\n",    "file 0600 3 00 data/b\n",
        "dir 0700 /etc\n",    "dir 0700 data\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t = malloc(len + 64);
        /* each case: the line inserted before "end" (or replacing the first line) */
        if (i == 0)
            snprintf(t, len + 64, "%s%s", bad[0], strchr(text, '\n') + 1);
        else
            snprintf(t, len + 64, "%.*s%send\n", (int)(len - 4), text, bad[i]);
        ck_assert_int_eq(bg_backup_manifest_parse(t, strlen(t), &back, &err), BG_EPROTO);
        free(t);
    }
    ck_assert_int_eq(bg_backup_manifest_parse(text, len - 4, &back, &err), BG_EPROTO);
    free(text);
    bg_backup_manifest_free(&m);
    ck_assert(!bg_backup_path_ok("a//b"));
    ck_assert(!bg_backup_path_ok("./a"));
    ck_assert(!bg_backup_path_ok("a\nb"));
    ck_assert(bg_backup_path_ok("data/psi-keys/grades.1.key"));
}
END_TEST

/* --- a gateway directory, backed up and restored --- */

static void
make_gateway(const char *gw)
{
    bg_config cfg;
    bg_err err = {0};
    char p[PATH_MAX];
    ck_assert_int_eq(bg_config_defaults(&cfg, gw, "440100", "Guangzhou", NULL, &err), BG_OK);
    snprintf(p, sizeof p, "%s/baygate.ini", gw);
    ck_assert_int_eq(bg_config_write(p, &cfg, false, &err), BG_OK);
    ck_assert_int_eq(bg_pki_key_write_new(cfg.key_path, key_o, &err), BG_OK);
    bg_store *s = NULL;
    ck_assert_int_eq(bg_store_open(&s, cfg.data_dir, "440100", NULL, &err), BG_OK);
    bg_store_close(s);
    snprintf(p, sizeof p, "%s/audit", cfg.data_dir);
    grow_log(p, 7, 0, 1000);
    snprintf(p, sizeof p, "%s/quota.tmp.0123456789ab", cfg.data_dir); /* an atomic write's temp */
    FILE *f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
    /* a peer's snapshot kept as a cache */
    snprintf(p, sizeof p, "%s/snapshots", cfg.data_dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/snapshots/440300-grades.snap", cfg.data_dir);
    f = fopen(p, "w");
    fputs("x", f);
    fclose(f);
}

START_TEST(gateway_backed_up_and_restored)
{
    const char *gw = fresh_dir("gz");
    make_gateway(gw);
    const char *out = path_in("gz.tar.gz"), *to = path_in("restored");
    unlink(out);
    nftw(to, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    bg_backup_manifest m;
    bg_err err = {0};
    ck_assert_int_eq(bg_backup_make(gw, out, &m, &err), BG_OK);
    struct stat st;
    ck_assert_int_eq(stat(out, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert(m.has_store && m.has_log && m.has_head);
    ck_assert_uint_eq(m.log_leaves, 7);
    ck_assert_ptr_null(bg_backup_manifest_find(&m, "data/quota.tmp.0123456789ab"));
    ck_assert_ptr_null(bg_backup_manifest_find(&m, "data/snapshots"));
    ck_assert_ptr_null(bg_backup_manifest_find(&m, "data/snapshots/440300-grades.snap"));
    ck_assert_ptr_nonnull(bg_backup_manifest_find(&m, "data/audit/leaves.log"));
    ck_assert_uint_eq(bg_backup_manifest_find(&m, "city.key")->mode, 0600);
    bg_backup_manifest_free(&m);
    ck_assert_int_eq(bg_backup_make(gw, out, &m, &err), BG_EEXIST);
    /* Inside the gateway directory: refused. */
    ck_assert_int_eq(bg_backup_make(gw, path_in("gz/x.tar"), &m, &err), BG_EINVAL);

    ck_assert_int_eq(bg_backup_restore(out, to, &m, &err), BG_OK);
    ck_assert_uint_eq(m.log_leaves, 7);
    bg_backup_manifest_free(&m);
    ck_assert_int_eq(stat(path_in("restored/city.key"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd,
             "cmp -s '%s/city.key' '%s/city.key' && cmp -s '%s/data/audit/leaves.log' "
             "'%s/data/audit/leaves.log'",
             gw, to, gw, to);
    ck_assert_int_eq(system(cmd), 0);
    /* Never over a directory that holds something. */
    ck_assert_int_eq(bg_backup_restore(out, to, &m, &err), BG_EEXIST);
}
END_TEST

START_TEST(damaged_archive_restores_nothing)
{
    const char *gw = fresh_dir("gz2");
    make_gateway(gw);
    const char *out = path_in("gz2.tar"), *to = path_in("restored2");
    unlink(out);
    nftw(to, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    bg_backup_manifest m;
    bg_err err = {0};
    ck_assert_int_eq(bg_backup_make(gw, out, &m, &err), BG_OK);
    bg_backup_manifest_free(&m);
    /* One byte of the last file's data changed (the last non-zero byte before the
     * archive's two closing blocks). */
    int fd = open(out, O_RDWR);
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t b;
    off_t at = size - 1024 - 512 - 1; /* inside the last entry's last block */
    for (; at > 0; at -= 512) {
        ck_assert_int_eq(pread(fd, &b, 1, at), 1);
        if (b != 0)
            break;
    }
    b ^= 1;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
    ck_assert_int_eq(bg_backup_restore(out, to, &m, &err), BG_EPROTO);
    ck_assert_int_eq(access(to, F_OK), -1); /* made by the restore, removed again */
}
END_TEST

static Suite *
backup_suite(void)
{
    Suite *s = suite_create("backup");
    TCase *loss = tcase_create("loss");
    tcase_add_test(loss, loss_statement_round_trip_and_forgery);
    tcase_add_test(loss, witness_accepts_a_loss_statement_and_nothing_else);
    tcase_add_test(loss, losses_log_and_held_files);
    tcase_add_test(loss, copy_of_a_log_stops_at_a_record_and_checks_heads);
    suite_add_tcase(s, loss);
    TCase *tar = tcase_create("tar");
    tcase_add_test(tar, tar_round_trip_plain_and_gzip);
    tcase_add_test(tar, tar_reader_refuses_what_it_does_not_write);
    tcase_add_test(tar, manifest_round_trip_and_strictness);
    suite_add_tcase(s, tar);
    TCase *gw = tcase_create("gateway");
    tcase_set_timeout(gw, 60);
    tcase_add_test(gw, gateway_backed_up_and_restored);
    tcase_add_test(gw, damaged_archive_restores_nothing);
    suite_add_tcase(s, gw);
    return s;
}

int
main(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/backup.XXXXXX", BG_TEST_TMPDIR);
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    bg_err err = {0};
    if (bg_pki_key_generate(&key_o, &err) != BG_OK || bg_pki_key_generate(&key_w, &err) != BG_OK) {
        fprintf(stderr, "test_backup: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(backup_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    EVP_PKEY_free(key_o);
    EVP_PKEY_free(key_w);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
