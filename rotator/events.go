package rotator

// EventType names an audit event. These names are the stable contract
// between the engine, the daemon and the audit trail's readers.
type EventType string

// Audit event names.
const (
	EventRotationStarted      EventType = "rotation.started"
	EventStepCompleted        EventType = "step.completed"
	EventStepFailed           EventType = "step.failed"
	EventRotationSucceeded    EventType = "rotation.succeeded"
	EventRotationFailed       EventType = "rotation.failed"
	EventRotationOrphaned     EventType = "rotation.orphaned"
	EventRotationResumed      EventType = "rotation.resumed"
	EventPreviousRetired      EventType = "previous.retired"
	EventPreviousRevoked      EventType = "previous.revoked"
	EventSecretAccessOpened   EventType = "secret_access.opened"
	EventSecretAccessRestored EventType = "secret_access.restored"
	EventDriftDetected        EventType = "drift.detected"
	EventForeignStaged        EventType = "staged.foreign"
	EventAppAdopted           EventType = "app.adopted"
	EventMFAVerified          EventType = "mfa.verified"
	EventMFAFailed            EventType = "mfa.failed"
	EventMFAEnrolled          EventType = "mfa.enrolled"
	EventMFADisabled          EventType = "mfa.disabled"
	EventApprovalRequested    EventType = "approval.requested"
	EventApprovalGranted      EventType = "approval.granted"
	EventSecretRevealed       EventType = "secret.revealed"
	EventConfigLoaded         EventType = "config.loaded"
	EventConfigReloaded       EventType = "config.reloaded"
	EventConfigRejected       EventType = "config.rejected"
	EventDaemonStarted        EventType = "daemon.started"
	EventDaemonStopped        EventType = "daemon.stopped"
	EventManualAction         EventType = "manual.action"
)
