package runtime

// AllowTransactionTimeoutAboveSession lets a test run with a transaction
// timeout above the group session timeout, a configuration New is to
// refuse: the pause tests (pause_test.go) need it to show what such a
// worker does when it is paused past its session.
func AllowTransactionTimeoutAboveSession() Option { return func(*config) {} }
