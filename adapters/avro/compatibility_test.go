package avro_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	hamba "github.com/hamba/avro/v2"
)

var release = flag.Bool("release", false, "snapshot schemas that have no released copy yet into testdata/released")

// Every schema in schemas/avro must read whatever its released version wrote
// (backward compatibility), so consumers can upgrade after producers or
// replay old data. A schema's first release is snapshotted with -release;
// a breaking change needs a new event type (".v2") instead.
func TestSchemasStayBackwardCompatible(t *testing.T) {
	reg, _ := mustCodec(t)
	checker := hamba.NewSchemaCompatibility()
	for _, name := range reg.Names() {
		current, _ := reg.Schema(name)
		path := filepath.Join("testdata", "released", name+".avsc")
		released, err := os.ReadFile(path)
		if os.IsNotExist(err) && *release {
			if err := os.WriteFile(path, current.Source, 0o644); err != nil {
				t.Fatal(err)
			}
			released = current.Source
		} else if err != nil {
			t.Errorf("%s has no released snapshot (%v); run go test ./adapters/avro -release once it ships", name, err)
			continue
		}
		if err := compatible(checker, string(current.Source), string(released)); err != nil {
			t.Errorf("%s cannot read what its released version wrote: %v", name, err)
		}
	}
	releasedFiles, _ := filepath.Glob(filepath.Join("testdata", "released", "*.avsc"))
	for _, f := range releasedFiles {
		name := filepath.Base(f[:len(f)-len(".avsc")])
		if _, ok := reg.Schema(name); !ok {
			t.Errorf("released schema %s was removed from schemas/avro", name)
		}
	}
}

// The check above must be able to fail.
func TestCompatibilityCheckerCatchesBreakingChanges(t *testing.T) {
	released := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	checker := hamba.NewSchemaCompatibility()
	breaking := map[string]string{
		"new field without default": `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"long"}]}`,
		"changed type":              `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`,
		"renamed record":            `{"type":"record","name":"S","fields":[{"name":"a","type":"string"}]}`,
	}
	for name, schema := range breaking {
		if compatible(checker, schema, released) == nil {
			t.Errorf("%s: reported compatible", name)
		}
	}
	ok := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":["null","long"],"default":null}]}`
	if err := compatible(checker, ok, released); err != nil {
		t.Errorf("optional field with default: %v", err)
	}
}

func compatible(checker *hamba.SchemaCompatibility, reader, writer string) error {
	r, err := hamba.ParseWithCache(reader, "", &hamba.SchemaCache{})
	if err != nil {
		return err
	}
	w, err := hamba.ParseWithCache(writer, "", &hamba.SchemaCache{})
	if err != nil {
		return err
	}
	return checker.Compatible(r, w)
}
