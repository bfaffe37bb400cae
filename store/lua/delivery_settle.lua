-- Settles a claimed entry of the retry schedule (settle_claim).
-- KEYS: 1 retry schedule
-- ARGV: 1 member, 2 claimed until ms, 3 now ms, 4 new due time ms, '' to
--       remove
--#include settle_claim
return settle_claim(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
