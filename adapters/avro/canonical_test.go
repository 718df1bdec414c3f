package avro_test

import (
	"regexp"

	hamba "github.com/hamba/avro/v2"

	"testing"

	"github.com/incentives-platform/incentives/adapters/avro"
)

// The vectors of DESIGN.md §4: the specification's fingerprints, which other
// languages' Avro libraries compute too.
func TestFingerprintVectors(t *testing.T) {
	tests := []struct {
		schema    string
		canonical string
		want      uint64
	}{
		{`"null"`, `"null"`, 0x63dd24e7cc258f8a},
		{`{"type":"null"}`, `"null"`, 0x63dd24e7cc258f8a},
		{`{"type":"record","name":"T","fields":[{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`,
			`{"name":"T","type":"record","fields":[{"name":"ts","type":"long"}]}`, 0x89a8b86518773c35},
	}
	for _, tt := range tests {
		canonical, err := avro.CanonicalForm([]byte(tt.schema))
		if err != nil {
			t.Fatalf("CanonicalForm(%s): %v", tt.schema, err)
		}
		if canonical != tt.canonical {
			t.Errorf("CanonicalForm(%s) = %s, want %s", tt.schema, canonical, tt.canonical)
		}
		if got := avro.Fingerprint([]byte(canonical)); got != tt.want {
			t.Errorf("Fingerprint(%s) = %#016x, want %#016x", canonical, got, tt.want)
		}
	}
}

func TestCanonicalForm(t *testing.T) {
	tests := []struct{ name, schema, want string }{
		{"primitive object", `{"type":"string","logicalType":"uuid"}`, `"string"`},
		{"strips docs, defaults, aliases and reorders",
			`{"fields":[{"type":"int","name":"a","default":1,"doc":"x"}],"doc":"d","aliases":["Q"],"type":"record","name":"R","namespace":"n.s"}`,
			`{"name":"n.s.R","type":"record","fields":[{"name":"a","type":"int"}]}`},
		{"named references use the full name once defined",
			`{"type":"record","name":"R","namespace":"a","fields":[{"name":"x","type":{"type":"record","name":"C","fields":[]}},{"name":"y","type":"C"},{"name":"z","type":{"type":"C"}}]}`,
			`{"name":"a.R","type":"record","fields":[{"name":"x","type":{"name":"a.C","type":"record","fields":[]}},{"name":"y","type":"a.C"},{"name":"z","type":"a.C"}]}`},
		{"nested namespace overrides and dotted names",
			`{"type":"record","name":"R","namespace":"a","fields":[{"name":"e","type":{"type":"enum","name":"b.E","symbols":["X","Y"]}},{"name":"f","type":{"type":"fixed","name":"F","namespace":"c","size":"016"}}]}`,
			`{"name":"a.R","type":"record","fields":[{"name":"e","type":{"name":"b.E","type":"enum","symbols":["X","Y"]}},{"name":"f","type":{"name":"c.F","type":"fixed","size":16}}]}`},
		{"unions, arrays and maps", `["null",{"type":"array","items":{"type":"map","values":{"type":"bytes","logicalType":"decimal","precision":4}}}]`,
			`["null",{"type":"array","items":{"type":"map","values":"bytes"}}]`},
		{"non-ASCII stays UTF-8", `{"type":"enum","name":"E","symbols":["\u00e9"]}`, `{"name":"E","type":"enum","symbols":["é"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := avro.CanonicalForm([]byte(tt.schema))
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalForm(%s) = %s, %v; want %s", tt.schema, got, err, tt.want)
			}
		})
	}
}

// hamba/avro is an independent implementation of the canonical form. Like
// goavro it keeps logical types (which the specification strips, see the
// vectors above), so its output is compared with those wrappers erased: on
// everything else (full names, references, order, unions) both must agree.
func TestCanonicalFormAgreesWithHamba(t *testing.T) {
	reg, _ := mustCodec(t)
	for _, name := range reg.Names() {
		s, _ := reg.Schema(name)
		hs, err := hamba.ParseWithCache(string(s.Source), "", &hamba.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		theirs := logicalType.ReplaceAllString(hs.String(), `"$1"`)
		if theirs != s.Canonical {
			t.Errorf("%s:\nours:  %s\nhamba: %s", name, s.Canonical, theirs)
		}
	}
}

var logicalType = regexp.MustCompile(`\{"type":"(\w+)","logicalType":"[\w-]+"\}`)
