package serving

// PID is the process that serves the function now, 0 when it is scaled to zero. Tools that
// measure a function (CPU time, memory from /proc) or kill it to test recovery use it.
func (s *Service) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || isClosed(s.cur.exited) || s.cur.cmd.Process == nil {
		return 0
	}
	return s.cur.cmd.Process.Pid
}
