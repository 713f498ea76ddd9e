/*
 * fuzz_envelope.c - opening signed envelopes (peers/envelope.h) as the
 * answering gateway opens every federation request, against a real trust
 * set-up made once (CA, CRL, roster pins; fuzz_pki.h): Shenzhen opens what
 * arrives, Guangzhou is the member that may send.
 *
 * The first byte picks the mode:
 *   0 raw: the rest is the message, opened as a request (bg_env_open)
 *   1 raw: the same, opened as an answer to a request we sent
 *          (bg_env_open_answer), as the asking side does
 *   2 sealed: the rest describes a request (flags, purpose, body) that
 *          Guangzhou seals for real, then up to 8 byte edits (u16 offset,
 *          u8 xor) are applied to the sealed bytes before Shenzhen opens
 *          them; this reaches the certificate, pin, clock, replay and
 *          signature checks that random bytes never pass.
 * Invariants: an opened envelope is what was sealed when nothing was edited;
 * a refusal that says it can be answered is addressable and can be sealed as
 * an ErrorAnswer; an ErrorAnswer body parses within its bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_pki.h"
#include "peers/envelope.h"

static const bg_fuzz_pki *pki;
static bg_env_verifier *raw_verifier;

static bg_env_verifier *
verifier_new(const char *own, size_t replay_capacity)
{
    bg_env_verifier_config cfg = {
        .own_city = own,
        .trust = pki->trust,
        .member_fp = bg_fuzz_member_fp,
        .replay_capacity = replay_capacity,
    };
    bg_env_verifier *v = NULL;
    bg_err err = {0};
    bg_fuzz_assert(bg_env_verifier_new(&v, &cfg, &err) == BG_OK);
    return v;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pki = bg_fuzz_pki_get();
    raw_verifier = verifier_new(BG_FUZZ_SZ, 0);
    return 0;
}

/* What an opened envelope holds is bounded as promised. */
static void
check_opened(const bg_env_opened *o)
{
    bg_fuzz_assert(strlen(o->sender) == BG_CITY_CODE_LEN);
    bg_fuzz_assert(strlen(o->purpose) <= BG_ENV_PURPOSE_MAX);
    bg_fuzz_assert(o->authorisation_ref_len <= BG_ENV_AUTH_REF_MAX);
    bg_fuzz_assert((o->body == NULL) == (o->body_len == 0));
    bg_fuzz_assert(o->body_type != 0);
    if (o->body_type == BG_ENV_BODY_ERROR) {
        uint32_t code;
        char msg[BG_ENV_ERROR_MSG_MAX + 1];
        bg_err err = {0};
        if (bg_env_error_parse(o->body, o->body_len, &code, msg, &err) == BG_OK)
            bg_fuzz_assert(strlen(msg) <= BG_ENV_ERROR_MSG_MAX);
    }
}

/* A refusal to answer: the ErrorAnswer Shenzhen would send must seal. */
static void
check_refusal(const bg_env_refusal *r)
{
    if (!bg_env_refusal_answerable(r))
        return;
    bg_fuzz_assert(r->addressable && bg_env_reason_answers(r->reason));
    uint8_t *out = NULL;
    size_t len = 0;
    bg_err err = {0};
    bg_fuzz_assert(bg_env_seal_refusal(pki->sz.id, r, 0, &out, &len, &err) == BG_OK);
    free(out);
}

static void
open_raw(const uint8_t *msg, size_t len, bool answer)
{
    bg_env_opened *o = NULL;
    bg_env_refusal ref;
    bg_err err = {0};
    bg_env_reason why;
    if (answer) {
        static const uint8_t nonce[BG_ENV_NONCE_LEN] = {7};
        why = bg_env_open_answer(raw_verifier, msg, len, BG_FUZZ_GZ, nonce, 0, &o, &err);
    } else {
        why = bg_env_open(raw_verifier, msg, len, 0, &o, &ref, &err);
        if (why != BG_ENV_OK)
            check_refusal(&ref);
    }
    (void)bg_env_reason_name(why);
    if (why == BG_ENV_OK) {
        check_opened(o);
        bg_env_opened_free(o);
    }
    /* The body decoder on its own, too: the asker parses ErrorAnswer bodies. */
    uint32_t code;
    char text[BG_ENV_ERROR_MSG_MAX + 1];
    (void)bg_env_error_parse(msg, len, &code, text, &err);
}

static void
open_sealed(bg_fuzz_in *in)
{
    uint8_t flags = bg_fuzz_u8(in);
    size_t plen = bg_fuzz_u8(in) % (BG_ENV_PURPOSE_MAX + 8), got = 0;
    char purpose[BG_ENV_PURPOSE_MAX + 8];
    const uint8_t *pp = bg_fuzz_bytes(in, plen, &got);
    memcpy(purpose, pp, got);
    purpose[got] = '\0';
    size_t alen = bg_fuzz_u8(in) % (BG_ENV_AUTH_REF_MAX + 1);
    const uint8_t *aref = bg_fuzz_bytes(in, alen, &alen);
    uint32_t body_type = bg_fuzz_u8(in);
    int64_t skew_ms = (int64_t)(int16_t)bg_fuzz_u16(in) * 1000; /* up to +-9 hours */
    size_t nedits = bg_fuzz_u8(in) % 9;
    uint16_t at[8];
    uint8_t xr[8];
    for (size_t i = 0; i < nedits; i++) {
        at[i] = bg_fuzz_u16(in);
        xr[i] = bg_fuzz_u8(in);
    }
    size_t body_len = 0;
    const uint8_t *body = bg_fuzz_bytes(in, in->left, &body_len);

    int64_t now = bg_env_now_ms();
    bg_env_fields f = {
        .recipient = (flags & 1) ? BG_FUZZ_GZ : BG_FUZZ_SZ, /* 1: addressed to someone else */
        .issued_at_ms = now + skew_ms,
        .purpose = purpose,
        .authorisation_ref = alen ? aref : NULL,
        .authorisation_ref_len = alen,
        .body_type = body_type,
        .body = body_len ? body : NULL,
        .body_len = body_len,
    };
    /* Guangzhou seals; (flags & 2) has Shenzhen seal to itself (not the sender it claims). */
    const bg_env_identity *id = (flags & 2) ? pki->sz.id : pki->gz.id;
    uint8_t *msg = NULL;
    size_t len = 0;
    bg_env_sent sent;
    bg_err err = {0};
    if (bg_env_seal(id, &f, (flags & 4) == 0, 0, &msg, &len, &sent, &err) != BG_OK)
        return; /* fields the sealer refuses (empty body type, bad purpose) */
    for (size_t i = 0; i < nedits; i++)
        msg[at[i] % len] ^= xr[i];

    /* A fresh verifier per input: its replay cache must not fill across inputs. */
    bg_env_verifier *v = verifier_new(BG_FUZZ_SZ, 64);
    bg_env_opened *o = NULL;
    bg_env_refusal ref;
    bg_env_reason why = bg_env_open(v, msg, len, now, &o, &ref, &err);
    if (why == BG_ENV_OK) {
        check_opened(o);
        if (nedits == 0) {
            bg_fuzz_assert(strcmp(o->sender, id->city) == 0 && o->body_len == body_len);
            bg_fuzz_assert(body_len == 0 || memcmp(o->body, body, body_len) == 0);
            bg_fuzz_assert(memcmp(o->nonce, sent.nonce, BG_ENV_NONCE_LEN) == 0);
        }
        /* The same bytes again are a replay. */
        bg_env_opened *o2 = NULL;
        bg_fuzz_assert(bg_env_open(v, msg, len, now, &o2, &ref, &err) == BG_ENV_REPLAY);
        check_refusal(&ref);
        /* Shenzhen's answer (with its certificate: Guangzhou's fresh verifier has
         * not seen it) must open at Guangzhou as bound to this request. */
        uint8_t *ans = NULL;
        size_t ans_len = 0;
        if (nedits == 0 && id == pki->gz.id &&
            bg_env_seal_answer(pki->sz.id, o, BG_ENV_BODY_FIRST_APP, NULL, 0, true, 0, &ans,
                               &ans_len, &err) == BG_OK) {
            bg_env_verifier *vg = verifier_new(BG_FUZZ_GZ, 64);
            bg_env_opened *a = NULL;
            bg_fuzz_assert(bg_env_open_answer(vg, ans, ans_len, BG_FUZZ_SZ, sent.nonce, now, &a,
                                              &err) == BG_ENV_OK);
            bg_env_opened_free(a);
            bg_env_verifier_free(vg);
            free(ans);
        }
        bg_env_opened_free(o);
    } else {
        check_refusal(&ref);
    }
    bg_env_verifier_free(v);
    free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        open_raw(data + 1, size - 1, false);
        break;
    case 1:
        open_raw(data + 1, size - 1, true);
        break;
    default: {
        bg_fuzz_in in = {data + 1, size - 1};
        open_sealed(&in);
        break;
    }
    }
    return 0;
}

/* Seeds: sealed-mode descriptions, and real sealed envelopes for the raw modes
 * (they fail the certificate check in another process, whose CA is another,
 * but carry every structure the decoder walks). */
int
bg_fuzz_make_seeds(const char *dir)
{
    static const uint8_t plain[] = {2,   0,   11, 's', 'u', 'p', 'e', 'r', 'v', 'i', 's', 'i',
                                    'o', 'n', 0,  16,  0,   0,   0,   'h', 'e', 'l', 'l', 'o'};
    static const uint8_t fp_only[] = {2, 4, 7, 'l', 'e', 'n', 'd', 'i', 'n', 'g', 4,  1,
                                      2, 3, 4, 17,  0,   0,   0,   'b', 'o', 'd', 'y'};
    static const uint8_t edited[] = {2,   0,   11, 's', 'u', 'p', 'e', 'r', 'v', 'i', 's', 'i',
                                     'o', 'n', 0,  16,  0,   0,   1,   200, 0,   1,   'x'};
    static const uint8_t stale[] = {2, 0, 0, 0, 16, 0, 0x80, 0, 'x'};
    static const uint8_t error_body[] = {2,    0,    0,    0,    1,   0,   0,  0,
                                         0x08, 0x65, 0x12, 0x03, 'b', 'a', 'd'};
    if (bg_fuzz_write_seed(dir, "sealed-plain", plain, sizeof plain) != 0 ||
        bg_fuzz_write_seed(dir, "sealed-fingerprint", fp_only, sizeof fp_only) != 0 ||
        bg_fuzz_write_seed(dir, "sealed-edited", edited, sizeof edited) != 0 ||
        bg_fuzz_write_seed(dir, "sealed-stale", stale, sizeof stale) != 0 ||
        bg_fuzz_write_seed(dir, "sealed-error", error_body, sizeof error_body) != 0)
        return -1;
    bg_env_fields f = {.recipient = BG_FUZZ_SZ,
                       .purpose = "supervision",
                       .body_type = BG_ENV_BODY_FIRST_APP,
                       .body = (const uint8_t *)"ping",
                       .body_len = 4};
    for (int with_cert = 0; with_cert < 2; with_cert++) {
        uint8_t *msg = NULL;
        size_t len = 0;
        bg_err err = {0};
        if (bg_env_seal(pki->gz.id, &f, with_cert, 0, &msg, &len, NULL, &err) != BG_OK)
            return -1;
        int rc = bg_fuzz_write_seed_mode(dir, with_cert ? "raw-request-cert" : "raw-request-fp", 0,
                                         msg, len);
        free(msg);
        if (rc != 0)
            return -1;
    }
    return 0;
}
