package mbus

import "math/rand/v2"

func randomMeters(n int, seed uint64) []*fakeMeter {
	rng := rand.New(rand.NewPCG(seed, 1))
	seen := map[uint32]bool{}
	var out []*fakeMeter
	for len(out) < n {
		id := rng.Uint32N(100000000)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, &fakeMeter{primary: byte(len(out) + 1), lastFCB: -1, telegrams: [][]byte{volumeRecord},
			sec: Secondary{ID: id, Manufacturer: 0x2C2D, Version: byte(rng.UintN(256)), Medium: 0x07}})
	}
	return out
}
