package session

import "time"

// SetClock makes m read the time from now (tests reach an expiry without waiting).
func SetClock(m *Manager, now func() time.Time) { m.now = now }
