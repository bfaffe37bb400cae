package store

// Connection hash fields.
const (
	cID              = "id"
	cOrg             = "org"
	cIntegration     = "integration"
	cUsername        = "username"
	cExternalUserID  = "externalUserId"
	cDisplayName     = "displayName"
	cStatus          = "status"
	cStatusMessage   = "statusMessage"
	cDisabled        = "disabled"
	cMetadata        = "metadata"
	cWebhookURL      = "webhookUrl"
	cCreatedAt       = "createdAt"
	cUpdatedAt       = "updatedAt"
	cLastRefreshedAt = "lastRefreshedAt"
	cCredentials     = "credentials"
	cLastLinkID      = "lastLinkId"
	cLastFinishedAt  = "lastFinishedAt" // when the last link finished, which orders links' writes
	cVersion         = "version"
)
