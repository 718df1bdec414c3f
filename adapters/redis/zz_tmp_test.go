package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

func BenchmarkTmpSketch(b *testing.B) {
	s, err := NewSketch(MustClient(b), SketchConfig{})
	if err != nil {
		b.Fatal(err)
	}
	_, zipf := zipfCampaigns(1, 100_000, 1_000, 1.1)
	uni := make([]string, 100_000)
	for i := range uni {
		uni[i] = uuid.NewString()
	}
	hashOnly := murmur3Section(b) + `
local seeds = {0,1,2,3,4}
local n = 0
for i = 1, #ARGV do local h = murmur3(ARGV[i], seeds); n = n + h[1] % 2 end
return n`
	for _, tc := range []struct {
		name   string
		stream []string
	}{{"zipf", zipf}, {"uniform", uni}} {
		b.Run(tc.name+"/full", func(b *testing.B) {
			tenant := uuid.New()
			defer s.ForgetTenant(context.Background(), tenant)
			window := s.Window(time.Now())
			for i := 0; b.Loop(); i++ {
				start := (i * 1000) % (len(tc.stream) - 1000)
				if _, err := s.AddAndEstimate(context.Background(), tenant, window, tc.stream[start:start+1000], 5000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "items/s")
		})
		b.Run(tc.name+"/hashonly", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				start := (i * 1000) % (len(tc.stream) - 1000)
				args := make([]any, 1000)
				for j := range args {
					args[j] = tc.stream[start+j]
				}
				if err := s.rdb.Eval(context.Background(), hashOnly, nil, args...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "items/s")
		})
	}
	_ = fmt.Sprint
}
