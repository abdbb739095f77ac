/*
 * hash.c — hashing must be deterministic across runs and builds: state
 * tables and checkpoints are addressed by these values.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

Test(hash, golden_values)
{
    /* pinned: a change here moves every key of every durable state table.
     * (The empty key under seed 0 hashes to 0: mix(0) == 0.) */
    cr_assert_eq(cep_hash_bytes("", 0, 0), UINT64_C(0x0000000000000000));
    cr_assert_eq(cep_hash_bytes("user-42", 7, 0), UINT64_C(0xb3736eadb94a2c4e));
    cr_assert_eq(cep_hash_bytes("0123456789abcdef!", 17, 1), UINT64_C(0xb3e46fc4caf2122b));
    cr_assert_eq(cep_hash_mix(1), UINT64_C(0xb456bcfc34c2cb2c));
}

Test(hash, same_input_same_hash)
{
    const char *k = "card:4111111111111111";
    uint64_t h = cep_hash_bytes(k, strlen(k), 99);
    char copy[64];
    memcpy(copy + 3, k, strlen(k)); /* unaligned copy hashes the same */
    cr_assert_eq(cep_hash_bytes(copy + 3, strlen(k), 99), h);
}

Test(hash, seed_length_and_content_matter)
{
    cr_assert_neq(cep_hash_bytes("abc", 3, 0), cep_hash_bytes("abc", 3, 1));
    cr_assert_neq(cep_hash_bytes("a", 1, 0), cep_hash_bytes("a\0", 2, 0));
    cr_assert_neq(cep_hash_bytes("", 0, 0), cep_hash_bytes("\0", 1, 0));
    cr_assert_neq(cep_hash_bytes("abcdefgh", 8, 0), cep_hash_bytes("abcdefgi", 8, 0));
    cr_assert_neq(cep_hash_bytes("abcdefghX", 9, 0), cep_hash_bytes("abcdefghY", 9, 0));
}

Test(hash, low_bits_spread)
{
    /* tables index by hash & (cap - 1): sequential keys must not collide
     * much in the low bits */
    unsigned seen[64] = {0};
    for (int i = 0; i < 6400; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%d", i);
        seen[cep_hash_bytes(k, (size_t)n, 0) & 63]++;
    }
    for (int b = 0; b < 64; b++) cr_assert(seen[b] > 50 && seen[b] < 150, "bucket %d: %u", b, seen[b]);
}

Test(hash, str_ieq)
{
    cr_assert(cep_str_ieq("Select", 6, "SELECT"));
    cr_assert(cep_str_ieq("SELECTx", 6, "select"));
    cr_assert_not(cep_str_ieq("SELEC", 5, "SELECT"));
    cr_assert_not(cep_str_ieq("SELECT", 6, "SELEC"));
    cr_assert(cep_str_ieq("", 0, ""));
}
