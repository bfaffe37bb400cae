-- Changes an organization's settings in one step. A new webhook secret
-- keeps the one it replaces, sealed as it is, as the previous secret until
-- ARGV[2]: of two rotations at once, each keeps the one before it.
-- KEYS: 1 organization hash
-- ARGV: 1 the new webhook secret, sealed ('' keeps it), 2 with a new secret,
--       until when the replaced one still signs (unix ms; '0' ends any overlap),
--       3.. field, value pairs of the other settings
-- Returns 0 when the organization does not exist, else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'webhookSecret')
  if ARGV[2] ~= '0' and cur then
    redis.call('HSET', KEYS[1], 'prevWebhookSecret', cur, 'prevSecretUntil', ARGV[2])
  else
    redis.call('HSET', KEYS[1], 'prevSecretUntil', '0')
  end
  redis.call('HSET', KEYS[1], 'webhookSecret', ARGV[1])
end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
return 1
