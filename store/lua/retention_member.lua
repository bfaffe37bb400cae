-- retention_member names a link in its shard's retention schedule, with
-- what its index entries need once the link is gone; the same member as
-- keys.go's retentionMember gives the link at its creation.
local function retention_member(id, org, integration, externalUserId)
  return id .. '\0' .. (org or '') .. '\0' .. (integration or '') .. '\0' .. (externalUserId or '')
end
