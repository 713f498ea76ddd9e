/*
 * oprf.h - RFC 9497 OPRF, mode 0 (modeOPRF), suite ristretto255-SHA512, on libsodium.
 *
 * The asker (client) hides an input x as B = r*H(x) with a random blind r; the answerer
 * (server) returns E = k*B; the asker removes the blind, N = r^-1*E = k*H(x), and hashes
 * N with x into a 64-byte output. The answerer never sees x, the asker never sees k.
 *
 * Encodings (all fixed size, as the RFC's suite defines them):
 *   scalar   32 bytes little-endian, canonical: 0 < s < L (the group order). Keys and
 *            blinds must be non-zero; a non-canonical or zero scalar is refused, never
 *            reduced silently.
 *   element  32 bytes, the canonical ristretto255 encoding. Every element that comes
 *            from the caller is checked before use (crypto_core_ristretto255_is_valid_point,
 *            which also refuses non-canonical encodings) and must not be the identity
 *            (whose only canonical encoding is 32 zero bytes).
 *   output   64 bytes (SHA-512).
 *   input    0..BG_OPRF_INPUT_MAX bytes (Finalize encodes its length in 2 bytes).
 *
 * Status: every fallible function returns BG_OK or a BG_E* code and fills err (NULL
 * allowed) with a message that names the argument (and, in batches, the index of the
 * first offending element). Messages never contain key, blind or input bytes.
 *   BG_EINVAL   bad argument: length, non-canonical or zero scalar, invalid or identity
 *               element, NULL pointer with a non-zero count
 *   BG_ELIMIT   a count too large to address
 *   BG_ECRYPTO  libsodium failed to initialise, or an operation that cannot fail on
 *               checked inputs did (never seen; reported rather than ignored)
 * On failure every output buffer is zeroed, so a partial result cannot be used by
 * mistake (a batch run in place therefore loses its input too). Outputs never overlap
 * inputs unless a function says so.
 *
 * Secrets (keys, blinds, inverses, unblinded elements, hashes of inputs) are wiped with
 * sodium_memzero when an intermediate copy is no longer needed; the caller owns and
 * wipes the buffers it passes. Everything that touches secrets is constant time
 * (libsodium's arithmetic; the canonical-scalar check is branch-free).
 *
 * Threads: all functions are thread safe. libsodium is initialised once, lazily
 * (pthread_once), by the first call of any function; bg_oprf_init makes that explicit.
 * The *_batch functions split n independent items across nthreads threads (the calling
 * thread is one of them; 0 = bg_oprf_threads_default(); 1 = serial, no thread created;
 * more than BG_OPRF_THREADS_MAX is capped; fewer threads run if creating one fails).
 * Results do not depend on the thread count, and neither does the error: it names
 * the lowest failing index, as a serial run would. Threads are created per call and
 * joined before it returns (with all signals blocked); a caller that already runs
 * requests on its own pool should pass 1, or split its cores, to avoid oversubscription.
 */
#ifndef BG_OPRF_H
#define BG_OPRF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define BG_OPRF_SCALARBYTES 32U
#define BG_OPRF_ELEMENTBYTES 32U
#define BG_OPRF_OUTPUTBYTES 64U
#define BG_OPRF_SEEDBYTES 32U
#define BG_OPRF_INPUT_MAX 65535U     /* also the bound on DeriveKeyPair's info */
#define BG_OPRF_XMD_MAX (255U * 64U) /* expand_message_xmd: at most 255 SHA-512 blocks */
#define BG_OPRF_DST_MAX 255U
#define BG_OPRF_THREADS_MAX 256U

/* Initialises libsodium (once per process; later calls are free). */
int bg_oprf_init(bg_err *err);

/* Online CPUs (sysconf), at least 1 and at most BG_OPRF_THREADS_MAX. */
unsigned bg_oprf_threads_default(void);

/*
 * RFC 9380 §5.3.1 expand_message_xmd with SHA-512: out_len (1..BG_OPRF_XMD_MAX) uniform
 * bytes from msg under the domain tag dst (1..BG_OPRF_DST_MAX bytes).
 */
int bg_oprf_expand_message_xmd(uint8_t *out, size_t out_len, const uint8_t *msg, size_t msg_len,
                               const uint8_t *dst, size_t dst_len, bg_err *err);

/*
 * HashToGroup: the element H(input), from 64 bytes of expand_message_xmd under
 * "HashToGroup-" || contextString. Refuses an input longer than BG_OPRF_INPUT_MAX.
 */
int bg_oprf_hash_to_group(uint8_t point[BG_OPRF_ELEMENTBYTES], const uint8_t *input,
                          size_t input_len, bg_err *err);

/* HashToScalar: 64 bytes of expand_message_xmd under "HashToScalar-" || contextString,
 * reduced mod L. The result may be zero (probability 2^-252); callers needing a key
 * check it. */
int bg_oprf_hash_to_scalar(uint8_t scalar[BG_OPRF_SCALARBYTES], const uint8_t *input,
                           size_t input_len, bg_err *err);

/*
 * BG_OK iff len == 32 and s is a canonical non-zero scalar (usable as key or blind).
 * The message is the bare reason ("zero scalar"), for the caller to prefix with its
 * own name for the value; likewise bg_oprf_element_check.
 */
int bg_oprf_scalar_check(const uint8_t *s, size_t len, bg_err *err);

/* BG_OK iff len == 32 and e is a canonical ristretto255 encoding other than the identity. */
int bg_oprf_element_check(const uint8_t *e, size_t len, bg_err *err);

/* inv = s^-1 mod L, for a canonical non-zero s. inv may alias s. */
int bg_oprf_scalar_invert(uint8_t inv[BG_OPRF_SCALARBYTES], const uint8_t s[BG_OPRF_SCALARBYTES],
                          bg_err *err);

/* A uniformly random key (canonical, non-zero). */
int bg_oprf_keygen(uint8_t sk[BG_OPRF_SCALARBYTES], bg_err *err);

/*
 * DeriveKeyPair (RFC 9497 §3.2.1), private half: the key determined by a 32-byte secret
 * seed and a public info string (0..BG_OPRF_INPUT_MAX bytes).
 */
int bg_oprf_derive_key(uint8_t sk[BG_OPRF_SCALARBYTES], const uint8_t seed[BG_OPRF_SEEDBYTES],
                       const uint8_t *info, size_t info_len, bg_err *err);

/* Blind: a fresh random blind and blinded = blind * H(input). */
int bg_oprf_blind(uint8_t blind[BG_OPRF_SCALARBYTES], uint8_t blinded[BG_OPRF_ELEMENTBYTES],
                  const uint8_t *input, size_t input_len, bg_err *err);

/* Blind with a given blind (test vectors, interop): blinded = blind * H(input). */
int bg_oprf_blind_with(uint8_t blinded[BG_OPRF_ELEMENTBYTES],
                       const uint8_t blind[BG_OPRF_SCALARBYTES], const uint8_t *input,
                       size_t input_len, bg_err *err);

/*
 * BlindEvaluate: evaluated = sk * element, for a received (checked) element. Also the
 * plain k*P of snapshot building. evaluated may alias element.
 */
int bg_oprf_evaluate(uint8_t evaluated[BG_OPRF_ELEMENTBYTES], const uint8_t sk[BG_OPRF_SCALARBYTES],
                     const uint8_t element[BG_OPRF_ELEMENTBYTES], bg_err *err);

/* Unblind: unblinded = blind^-1 * evaluated (= k*H(input)). unblinded may alias evaluated. */
int bg_oprf_unblind(uint8_t unblinded[BG_OPRF_ELEMENTBYTES],
                    const uint8_t blind[BG_OPRF_SCALARBYTES],
                    const uint8_t evaluated[BG_OPRF_ELEMENTBYTES], bg_err *err);

/*
 * The Finalize hash over an already unblinded element:
 * SHA-512(I2OSP(len(input),2) || input || I2OSP(32,2) || unblinded || "Finalize").
 * With unblinded = k*H(input) this is also the server-side Evaluate(k, input).
 */
int bg_oprf_output(uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *input, size_t input_len,
                   const uint8_t unblinded[BG_OPRF_ELEMENTBYTES], bg_err *err);

/* Finalize: bg_oprf_unblind then bg_oprf_output. */
int bg_oprf_finalize(uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *input, size_t input_len,
                     const uint8_t blind[BG_OPRF_SCALARBYTES],
                     const uint8_t evaluated[BG_OPRF_ELEMENTBYTES], bg_err *err);

/*
 * Batches: n items, element and scalar arrays packed (item i at offset 32*i); inputs
 * given as n pointers and n lengths (inputs[i] may be NULL when input_lens[i] == 0).
 */

/* points[i] = H(inputs[i]). */
int bg_oprf_hash_to_group_batch(uint8_t *points, const uint8_t *const *inputs,
                                const size_t *input_lens, size_t n, unsigned nthreads, bg_err *err);

/* Fresh random blinds[i] and blinded[i] = blinds[i] * H(inputs[i]). */
int bg_oprf_blind_batch(uint8_t *blinds, uint8_t *blinded, const uint8_t *const *inputs,
                        const size_t *input_lens, size_t n, unsigned nthreads, bg_err *err);

/*
 * evaluated[i] = sk * elements[i], one key for the batch. evaluated may be elements
 * (in place). With sk = r^-1 it also unblinds a batch that shares one blind r.
 */
int bg_oprf_evaluate_batch(uint8_t *evaluated, const uint8_t sk[BG_OPRF_SCALARBYTES],
                           const uint8_t *elements, size_t n, unsigned nthreads, bg_err *err);

/*
 * unblinded[i] = blinds[i]^-1 * evaluated[i]; the inverses are batched (one inversion
 * per 64 items). unblinded may be evaluated (in place).
 */
int bg_oprf_unblind_batch(uint8_t *unblinded, const uint8_t *blinds, const uint8_t *evaluated,
                          size_t n, unsigned nthreads, bg_err *err);

#endif
