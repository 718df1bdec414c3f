package http

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/incentives-platform/incentives/commands"
	"github.com/incentives-platform/incentives/domain/cohort"
)

func readCohortBody(body string) (commands.CohortSpec, []int, []string, error) {
	var (
		sizes []int
		ids   []string
	)
	spec, err := newCohortBody(strings.NewReader(body), 1<<30).read(func(batch []string) error {
		sizes = append(sizes, len(batch))
		ids = append(ids, batch...) // the batch is reused: copy it out
		return nil
	})
	return spec, sizes, ids, err
}

func TestCohortBodyStreamsIDsInBatchesInAnyFieldOrder(t *testing.T) {
	tenantID := uuid.New()
	var list []string
	for i := range 2*userIDBatch + 1 {
		list = append(list, fmt.Sprintf("%q", fmt.Sprint("u-", i)))
	}
	body := `{"userIds": [` + strings.Join(list, ",") + `], "kind": "STATIC", "tenantId": "` + tenantID.String() + `", "name": "VIPs"}` + "\n"
	spec, sizes, ids, err := readCohortBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want := commands.CohortSpec{TenantID: tenantID, Definition: cohort.Definition{Name: "VIPs", Kind: cohort.Static}, HasUserIDs: true}
	if spec != want || fmt.Sprint(sizes) != fmt.Sprint([]int{userIDBatch, userIDBatch, 1}) || ids[0] != "u-0" || ids[len(ids)-1] != fmt.Sprint("u-", 2*userIDBatch) {
		t.Fatalf("read %+v in batches %v, ids %d", spec, sizes, len(ids))
	}
	for body, want := range map[string]commands.CohortSpec{
		`{"name":"x","kind":"DYNAMIC","rule":"user.total > 1","userIds":null,"tenantId":null}`: {Definition: cohort.Definition{Name: "x", Kind: cohort.Dynamic, Rule: "user.total > 1"}},
		`{"name":"x","kind":"STATIC","userIds":[]}`:                                            {Definition: cohort.Definition{Name: "x", Kind: cohort.Static}, HasUserIDs: true},
		`{}`: {},
	} {
		if got, _, _, err := readCohortBody(body); err != nil || got != want {
			t.Errorf("read(%s) = %+v, %v; want %+v", body, got, err, want)
		}
	}
}

func TestCohortBodyProblems(t *testing.T) {
	for body, want := range map[string]string{
		``:                          "the request body is empty",
		`[]`:                        "must be a JSON object, not array",
		`"x"`:                       "must be a JSON object, not string",
		`{"name":"x"`:               "ends in the middle",
		`{"name" "x"}`:              "malformed JSON at byte",
		`{"name":"x"} {"name":"y"}`: "more than one JSON value",
		`{"name":"x"}}`:             "more than one JSON value",
		`{"nickname":"x"}`:          "nickname: is not a known field",
		`{"name":"x","name":"y"}`:   "name: is given more than once",
		`{"name":{"first":"x"}}`:    "name: must be a string, not object",
		`{"kind":true}`:             "kind: must be a string, not bool",
		`{"userIds":{"a":1}}`:       "userIds: must be an array, not object",
		`{"userIds":["a",["b"]]}`:   "userIds[1]: must be a string, not array",
		`{"userIds":["a",null]}`:    "userIds[1]: must be a string, not null",
		`{"tenantId":"acme"}`:       "tenantId: must be a UUID",
		`{"tenantId":"` + uuid.NewString() + `x"}`: "tenantId: must be a UUID",
	} {
		_, _, _, err := readCohortBody(body)
		var he *httpError
		if !errors.As(err, &he) || he.status != http.StatusBadRequest || !strings.Contains(he.detail, want) {
			t.Errorf("read(%s) = %v, want a 400 saying %q", body, err, want)
		}
	}
	// The storage's refusal stops the read and is returned as it is.
	stop := errors.New("stop")
	_, err := newCohortBody(strings.NewReader(`{"userIds":["a"],"name":"x"}`), 1<<20).read(func([]string) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("read after add failed = %v", err)
	}
	// Over the cap.
	_, err = newCohortBody(http.MaxBytesReader(nil, nopCloser{strings.NewReader(`{"userIds":["` + strings.Repeat("u", 100) + `"]}`)}, 20), 20).read(func([]string) error { return nil })
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("read over the cap = %v, want 413", err)
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// One huge value is refused once it passes the bound, not after the whole
// of it is held in memory.
func TestCohortBodyRefusesAHugeValueEarly(t *testing.T) {
	huge := &countingReader{r: io.MultiReader(strings.NewReader(`{"name":"`), infiniteReader{})}
	_, err := newCohortBody(huge, 1<<30).read(func([]string) error { return nil })
	var he *httpError
	if !errors.As(err, &he) || he.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("read = %v, want 413", err)
	}
	if huge.n > 4*maxValueBytes {
		t.Fatalf("read %d bytes of an endless value before refusing it", huge.n)
	}
}

type infiniteReader struct{}

func (infiniteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
