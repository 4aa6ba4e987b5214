/**
 * The log files of a gateway instance that the CloudWatch agent ships, one log group per
 * kind. The agent reads files only, not the journal (CloudWatch User Guide, "Manually create
 * or edit the CloudWatch agent configuration file", logs section: `files.collect_list`), and
 * Debian 13 cloud images have no rsyslog: every program writes a file of its own.
 *
 *   kind       file                                                 written by
 *   access     /var/log/haproxy/access.log                          haproxy's stdout (log stdout, JSON lines)
 *   haproxy    /var/log/haproxy/messages.log                        haproxy's stderr: ALERTs, WARNINGs (server
 *                                                                   state changes), the master's reload notices
 *   key-sync   /var/log/lg-key-sync/key-sync.log                    lg-key-sync, one JSON line per run
 *   instance   /var/log/lg-bootstrap.log                            the user data
 *              /opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log   the CloudWatch agent (errors, warnings)
 *              /var/log/amazon/ssm/errors.log                       the SSM agent's errors
 *
 * Pure: strings only.
 */
import { KEY_SYNC_DEFAULTS } from './key-sync';

/** HAProxy's JSON access log: systemd appends haproxy's stdout to it. */
export const ACCESS_LOG_PATH = '/var/log/haproxy/access.log';
/** HAProxy's own messages (stderr): startup and reload notices, ALERTs, server state changes. */
export const HAPROXY_MESSAGES_LOG_PATH = '/var/log/haproxy/messages.log';
/** key-sync's JSON lines (also in the journal, SyslogIdentifier=lg-key-sync). */
export const KEY_SYNC_LOG_PATH = `/var/log/${KEY_SYNC_DEFAULTS.logsDirectory}/key-sync.log`;
export const BOOTSTRAP_LOG_PATH = '/var/log/lg-bootstrap.log';
/** Where the CloudWatch agent logs itself ("Troubleshooting the CloudWatch agent": CloudWatch agent files and locations). */
export const CLOUDWATCH_AGENT_LOG_PATH = '/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log';
/** The SSM agent's error log on Linux (Systems Manager User Guide, "Viewing SSM Agent logs"). */
export const SSM_AGENT_ERROR_LOG_PATH = '/var/log/amazon/ssm/errors.log';

/** Names of the log groups the instances write to (deploy-time values or placeholders). */
export interface InstanceLogGroupNames {
  readonly access: string;
  /** @default - the access log group */
  readonly haproxy?: string;
  /** @default - the access log group */
  readonly keySync?: string;
  /** @default - the access log group */
  readonly instance?: string;
}

/**
 * The agent's `collect_list`. Non-JSON lines stay out of the access log: haproxy also logs its
 * server state changes to stdout in plain text, and they reach messages.log through stderr.
 * The CloudWatch agent's own log is filtered to its errors and warnings (lines with "E!" or
 * "W!"): its routine lines would cost more than they tell.
 */
export function logCollectList(groups: InstanceLogGroupNames): Array<Record<string, unknown>> {
  const entry = (
    file: string,
    group: string | undefined,
    name: string,
    shared: boolean,
    filters?: Array<{ type: 'include' | 'exclude'; expression: string }>,
  ) => ({
    file_path: file,
    log_group_name: group ?? groups.access,
    // One stream per instance and file: a file that shares its group with others gets its name in the stream's.
    log_stream_name: shared || group === undefined ? `{instance_id}-${name}` : '{instance_id}',
    timezone: 'UTC',
    ...(filters ? { filters } : {}),
  });
  return [
    entry(ACCESS_LOG_PATH, groups.access, 'access', false, [{ type: 'include', expression: '^\\{' }]),
    entry(HAPROXY_MESSAGES_LOG_PATH, groups.haproxy, 'haproxy', false),
    entry(KEY_SYNC_LOG_PATH, groups.keySync, 'key-sync', false),
    entry(BOOTSTRAP_LOG_PATH, groups.instance, 'bootstrap', true),
    entry(CLOUDWATCH_AGENT_LOG_PATH, groups.instance, 'cloudwatch-agent', true, [{ type: 'include', expression: ' [EW]! ' }]),
    entry(SSM_AGENT_ERROR_LOG_PATH, groups.instance, 'ssm-agent', true),
  ];
}

/** Log files that logrotate keeps small (haproxy keeps its descriptors open: copytruncate). */
export function logrotateConfig(): string {
  return `${[ACCESS_LOG_PATH, HAPROXY_MESSAGES_LOG_PATH, KEY_SYNC_LOG_PATH].join(' ')} {\n  daily\n  rotate 3\n  compress\n  missingok\n  notifempty\n  copytruncate\n}\n`;
}
