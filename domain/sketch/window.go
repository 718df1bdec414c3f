package sketch

import (
	"fmt"
	"time"
)

// Window returns the index of the window of length size that contains t:
// floor(unix seconds / size seconds), counted from the Unix epoch, so every
// process computes the same window for the same instant without talking to
// the others (the seed's windowTs = floor(epoch/600) for 10 minutes).
//
// t is the caller's choice (an event's time or the clock's): the package
// reads no clock. size must be a positive whole number of seconds; Window
// panics otherwise, since that is a configuration the caller should have
// refused at start-up.
func Window(t time.Time, size time.Duration) int64 {
	s := windowSeconds(size)
	u := t.Unix()
	w := u / s
	if u%s != 0 && u < 0 {
		w-- // round down before the epoch too
	}
	return w
}

// WindowStart returns the first instant of window index of length size, in
// UTC. WindowStart(w+1, size) is the end of window w.
func WindowStart(index int64, size time.Duration) time.Time {
	return time.Unix(index*windowSeconds(size), 0).UTC()
}

func windowSeconds(size time.Duration) int64 {
	if size < time.Second || size%time.Second != 0 {
		panic(fmt.Sprintf("sketch: window size %v is not a positive whole number of seconds", size))
	}
	return int64(size / time.Second)
}
