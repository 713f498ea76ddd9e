/*
 * demo.h - baygate demo: the scripted tour of the whole federation on loopback.
 *
 * It plays every part with the operator commands a person would type (each
 * shown as it runs, run by this same binary): the federation operator makes a
 * CA, three cities make their keys and get certificates, the operator signs a
 * roster and a CRL; each city generates and imports its credit data (Shenzhen
 * and Foshan share enterprises with Guangzhou); the three gateways start on
 * loopback and ping each other in all six directions; Guangzhou asks Shenzhen
 * and Foshan by private set intersection which of its enterprises are on their
 * lists, their grades, and how many are on another list, and every answer is
 * checked against the answering cities' stores. Then mutual recognition:
 * Shenzhen grades on its own scale, Guangzhou receives some of its grades with
 * attestations (each in Shenzhen's scale and on the roster's common scale) and
 * verifies one offline; Shenzhen repairs one evaluation and both other cities
 * see the new grade while the old attestation fails as revoked; Shenzhen's
 * evidence log proves a leaf against the root Guangzhou cosigned, and every
 * city's log verifies. A rogue with a look-alike CA is refused; the gateways
 * shut down cleanly. Every check is counted and the tour ends with one verdict
 * line.
 *
 * One file per act (demo_pki, demo_data, demo_live, demo_psi, demo_recognise,
 * demo_repair, demo_evidence, demo_rogue), the cities in demo_cities, the steps
 * and files the acts share in demo_step and demo_truth, the order of the acts in
 * demo.c (demo_int.h).
 */
#ifndef BG_DEMO_H
#define BG_DEMO_H

#include <stdint.h>

typedef struct bg_demo_opts {
    const char *dir; /* recreated on every run; refused if the demo did not make it */
    uint64_t count;  /* enterprises per city, 1..BG_DEMO_MAX_COUNT */
    uint64_t seed;
    double dirty; /* defect rate of the generated data, 0..1 */
} bg_demo_opts;

#define BG_DEMO_MAX_COUNT 10000000

/* Runs the tour; returns the exit status (cli.h): 0 if every check passed, 1 if
 * one failed, 2 if the tour could not go on (the message is on stderr). */
int bg_demo_run(const bg_demo_opts *opts);

#endif
