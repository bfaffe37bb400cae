package store

import (
	"crypto/rand"
	"hash/fnv"
	"strconv"
)

// Shards is how many shards the layout spreads work over. Each shard is one
// hash tag, so one Redis Cluster slot; the tags are chosen so that shard i
// sits in the middle of the i-th 64th of the slot space (slot 256i+128, give
// or take 8). A cluster whose masters hold even slot ranges (what
// `redis-cli --cluster create` makes) therefore holds even numbers of
// shards: up to 64 masters share every organization's work.
const Shards = 64

// shardTags are the shards' hash tags, found offline by searching "s<i>.<n>"
// for the first n whose CRC16 slot is within 8 of 256i+128 (a test checks
// them against a real cluster's CLUSTER KEYSLOT).
var shardTags = [Shards]string{
	"s0.293", "s1.416", "s2.134", "s3.1034", "s4.1426", "s5.1173", "s6.1397", "s7.992",
	"s8.1191", "s9.1229", "s10.397", "s11.512", "s12.120", "s13.148", "s14.2533", "s15.2066",
	"s16.963", "s17.826", "s18.1573", "s19.1026", "s20.726", "s21.663", "s22.341", "s23.204",
	"s24.12", "s25.2621", "s26.882", "s27.1027", "s28.802", "s29.947", "s30.833", "s31.976",
	"s32.549", "s33.917", "s34.306", "s35.243", "s36.671", "s37.619", "s38.1712", "s39.164",
	"s40.1401", "s41.1079", "s42.995", "s43.47", "s44.411", "s45.294", "s46.1970", "s47.133",
	"s48.156", "s49.2022", "s50.167", "s51.1064", "s52.410", "s53.295", "s54.96", "s55.1152",
	"s56.83", "s57.956", "s58.70", "s59.59", "s60.196", "s61.713", "s62.231", "s63.259",
}

// shardOf is the shard of a record id. Ids linkflow makes end in two hex
// digits that name their shard (newID); any other id is hashed.
func shardOf(id string) int {
	if n := len(id); n >= 2 {
		if v, err := strconv.ParseUint(id[n-2:], 16, 8); err == nil {
			return int(v) % Shards
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % Shards)
}

// shardFor is the shard of a name made of parts (an organization and an
// Idempotency-Key, an account), by hash.
func shardFor(parts ...string) int {
	h := fnv.New32a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return int(h.Sum32() % Shards)
}

// withShard puts shard into the last two hex digits of id.
func withShard(id string, shard int) string {
	const hex = "0123456789abcdef"
	b := []byte(id)
	b[len(b)-2], b[len(b)-1] = hex[shard>>4], hex[shard&15]
	return string(b)
}

// randomShard spreads records without an owner name evenly.
func randomShard() int {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return int(b[0]) % Shards
}
