package index

import (
	"math/rand/v2"
	"testing"

	"github.com/hoard-backup/hoard/repo/id"
	"github.com/hoard-backup/hoard/repo/pack"
)

// BenchmarkAddPack adds 200,000 random blobs one 16-blob pack at a time, as a
// long backup does; it was quadratic when every pack re-sorted a large array.
func BenchmarkAddPack(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < b.N; i++ {
		x := New()
		for p := 0; p < 200000/16; p++ {
			pk := Pack{Kind: pack.DataBlob, Size: 1 << 30}
			pk.ID[0], pk.ID[1], pk.ID[2] = byte(p), byte(p>>8), byte(p>>16)
			for j := 0; j < 16; j++ {
				var bid id.ID
				for k := range bid {
					bid[k] = byte(rng.Uint32())
				}
				pk.Blobs = append(pk.Blobs, pack.Entry{Type: pack.DataBlob, ID: bid, Offset: uint32(j), Length: 100, RawLength: 100})
			}
			x.AddPack(pk)
			if !x.Has(pack.DataBlob, pk.Blobs[0].ID) {
				b.Fatal("blob just added not found")
			}
		}
	}
}
