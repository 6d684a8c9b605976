package consent

// CachedTxs reports what m's cache of checked txs holds: entries and tx bytes.
func CachedTxs(m *Machine) (n, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.checked), m.checkedLen
}
