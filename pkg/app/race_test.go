//go:build race

package app_test

// raceEnabled: this test binary runs under the race detector, whose shadow
// memory would count in a peak-memory figure.
const raceEnabled = true
