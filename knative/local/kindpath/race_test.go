//go:build race

package kindpath

// raceEnabled: this test binary has the race detector, whose start-up takes about a second
// here; the stand-ins are then a copy built without it (see TestMain).
const raceEnabled = true
