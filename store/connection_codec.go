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
	cVersion         = "version"
)
