/*
 * demo_cities.c - the three cities the tour plays, with their grade scales.
 */
#include "gateway/demo/demo_int.h"

/* Shenzhen grades on a finer scale of its own, so that recognising its grades in
 * Guangzhou means translating them: its AAA and AA are both the common 1 (A in
 * Guangzhou and Foshan). */
const demo_city demo_cities[NDEMO] = {
    {"440100", "Guangzhou", NULL, "ABCD=A,B,C,D", {1, 2, 3, 4}, {{NULL}}},
    {"440300",
     "Shenzhen",
     "440100",
     "SZ=AAA,AA,A,B,C",
     {1, 1, 2, 3, 4},
     {{"AAA", "AA"}, {"A", "A"}, {"B", "B"}, {"C", "C"}}},
    {"440600", "Foshan", "440100", "ABCD=A,B,C,D", {1, 2, 3, 4}, {{NULL}}},
};
