package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors Run returns. Run retries every other error itself (a broker that
// restarts, a lost connection, a fenced producer after a stall, a member
// the group forgot): it ends only on these, on a cancelled context (nil),
// or on a signal (nil).
var (
	// ErrConfig is a configuration that cannot work: an option out of
	// range, or settings that contradict each other. Fix the program.
	ErrConfig = errors.New("invalid configuration")

	// ErrFenced is returned when another process runs with this one's
	// process id (a copied state directory): the group fenced this
	// member's instance id, or the thread's transactional producer was
	// fenced again and again with no commit in between.
	ErrFenced = errors.New("fenced by another instance with the same transactional id")

	// ErrUnrecoverable wraps an error that retrying cannot fix: the
	// broker refused access (authorization), does not support a needed
	// feature, or rejected a request as invalid.
	ErrUnrecoverable = errors.New("unrecoverable error")

	// ErrRestoreStalled is the error of a restore that did not reach the
	// end of a changelog in time, because a transaction below the end
	// stayed open longer than any transaction timeout of ours allows. The
	// thread retries it.
	ErrRestoreStalled = errors.New("changelog restore stalled on an open transaction")
)

// errStalled ends a thread's session when the process was stalled (paused,
// frozen, starved) long enough that its group membership or its
// transaction may be gone: the session aborts what it has, drops the
// tasks' uncommitted state and rejoins as a fresh member.
var errStalled = errors.New("process stalled past the safe bound: membership or transaction may be gone")

// errKind is what a thread does with an error that ended its session.
type errKind int

const (
	errRetry errKind = iota // start a new session after a backoff
	errFatal                // return it from Run
	errStop                 // the context ended: stop cleanly
)

// fatalKerrs are broker errors that no retry fixes.
var fatalKerrs = []error{
	kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed, kerr.SaslAuthenticationFailed, kerr.DelegationTokenAuthorizationFailed,
	kerr.UnsupportedVersion, kerr.UnsupportedForMessageFormat, kerr.InvalidTransactionTimeout,
	kerr.InvalidConfig, kerr.InvalidTopicException, kerr.InvalidRequiredAcks, kerr.PolicyViolation,
	kerr.UnsupportedCompressionType, kerr.InvalidRecord,
	kerr.RecordListTooLarge, kerr.MessageTooLarge,
}

// classify tells what to do with an error that ended a thread's session.
func classify(ctx context.Context, err error) errKind {
	switch {
	case err == nil:
		return errStop
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed)):
		return errStop
	case errors.Is(err, ErrConfig), errors.Is(err, ErrFenced), errors.Is(err, ErrUnrecoverable),
		errors.Is(err, ErrMissingTopic), errors.Is(err, ErrCopartition), errors.Is(err, ErrChangelogConfig),
		// Another member joined with this one's instance id: a second
		// process with the same process id. The newer one keeps the
		// place; rejoining would fight it.
		errors.Is(err, kerr.FencedInstanceID):
		return errFatal
	}
	if fatalKerr(err) {
		return errFatal
	}
	return errRetry
}

// fatalKerr reports whether err is a broker error that no retry fixes.
func fatalKerr(err error) bool {
	for _, k := range fatalKerrs {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// fencedErr reports whether err says the thread's producer was fenced:
// after a stall past the transaction timeout (the broker aborted the
// transaction and bumped the epoch), or by another producer with the same
// transactional id.
func fencedErr(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// unrecoverable marks err as one that retrying cannot fix.
func unrecoverable(err error) error { return fmt.Errorf("%w: %w", ErrUnrecoverable, err) }
