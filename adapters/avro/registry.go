package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// ErrUndecodable marks a value this package cannot decode: not single-object
// encoded, of an unknown schema, or with a body that does not match its
// schema. Retrying it never helps, so consumers send it to their DLQ.
var ErrUndecodable = errors.New("undecodable avro value")

// singleObjectMarker starts every single-object encoded value.
var singleObjectMarker = [2]byte{0xC3, 0x01}

const headerLen = 10 // marker + fingerprint

// Schema is one schema file of the registry.
type Schema struct {
	// Name is the file's base name without ".avsc": the event type it carries
	// ("tenant.created.v1") or the value's name ("action-event").
	Name string
	// Canonical is the schema's Parsing Canonical Form.
	Canonical string
	// Fingerprint is the CRC-64-AVRO of Canonical, as written in the header.
	Fingerprint uint64
	// Source is the schema file as written.
	Source []byte

	codec *goavro.Codec
}

// Registry holds the platform's schemas, found by name and by fingerprint.
// It is immutable after Load and safe for concurrent use.
type Registry struct {
	byName        map[string]*Schema
	byFingerprint map[uint64]*Schema
}

// Load reads every *.avsc file in dir of fsys.
func Load(fsys fs.FS, dir string) (*Registry, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.avsc"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .avsc files in %s", dir)
	}
	r := &Registry{byName: map[string]*Schema{}, byFingerprint: map[uint64]*Schema{}}
	for _, file := range files {
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		s, err := newSchema(strings.TrimSuffix(path.Base(file), ".avsc"), src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if other, dup := r.byFingerprint[s.Fingerprint]; dup {
			return nil, fmt.Errorf("%s and %s have the same canonical form", other.Name, s.Name)
		}
		r.byName[s.Name] = s
		r.byFingerprint[s.Fingerprint] = s
		// Values written by goavro's SingleFromNative carry its own
		// fingerprint; accept them too (never written by this package).
		if s.codec.Rabin != s.Fingerprint {
			r.byFingerprint[s.codec.Rabin] = s
		}
	}
	return r, nil
}

func newSchema(name string, src []byte) (*Schema, error) {
	canonical, err := CanonicalForm(src)
	if err != nil {
		return nil, err
	}
	codec, err := goavro.NewCodec(string(src))
	if err != nil {
		return nil, err
	}
	return &Schema{Name: name, Canonical: canonical, Fingerprint: Fingerprint([]byte(canonical)), Source: src, codec: codec}, nil
}

// Schema returns the schema called name.
func (r *Registry) Schema(name string) (*Schema, bool) {
	s, ok := r.byName[name]
	return s, ok
}

// Names returns the names of all schemas, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Encode returns native (goavro's native form: maps, time.Time for
// timestamps, goavro unions) single-object encoded with the named schema.
func (r *Registry) Encode(name string, native map[string]any) ([]byte, error) {
	s, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("no avro schema %q", name)
	}
	return s.AppendSingleObject(nil, native)
}

// Decode reads a single-object encoded value. It returns the schema that wrote
// it and the value in goavro's native form, or an error wrapping ErrUndecodable.
func (r *Registry) Decode(data []byte) (*Schema, map[string]any, error) {
	if len(data) < headerLen || data[0] != singleObjectMarker[0] || data[1] != singleObjectMarker[1] {
		return nil, nil, fmt.Errorf("%w: not avro single-object encoded", ErrUndecodable)
	}
	fp := binary.LittleEndian.Uint64(data[2:headerLen])
	s, ok := r.byFingerprint[fp]
	if !ok {
		return nil, nil, fmt.Errorf("%w: unknown schema fingerprint %#016x", ErrUndecodable, fp)
	}
	native, rest, err := s.codec.NativeFromBinary(data[headerLen:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrUndecodable, s.Name, err)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrUndecodable, s.Name, len(rest))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s is not a record", ErrUndecodable, s.Name)
	}
	return s, m, nil
}

// AppendSingleObject appends native, single-object encoded, to buf.
func (s *Schema) AppendSingleObject(buf []byte, native map[string]any) ([]byte, error) {
	buf = append(buf, singleObjectMarker[:]...)
	buf = binary.LittleEndian.AppendUint64(buf, s.Fingerprint)
	buf, err := s.codec.BinaryFromNative(buf, native)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", s.Name, err)
	}
	return buf, nil
}

// EncodeJSON returns native in Avro's JSON encoding, which any Avro library can
// read back with this schema.
func (s *Schema) EncodeJSON(native map[string]any) ([]byte, error) {
	b, err := s.codec.TextualFromNative(nil, native)
	if err != nil {
		return nil, fmt.Errorf("encode %s as json: %w", s.Name, err)
	}
	return b, nil
}

// DecodeJSON reads a value in Avro's JSON encoding. Errors wrap ErrUndecodable.
func (s *Schema) DecodeJSON(data []byte) (map[string]any, error) {
	native, _, err := s.codec.NativeFromTextual(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s json: %v", ErrUndecodable, s.Name, err)
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a record", ErrUndecodable, s.Name)
	}
	return m, nil
}
