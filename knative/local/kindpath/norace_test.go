//go:build !race

package kindpath

const raceEnabled = false
