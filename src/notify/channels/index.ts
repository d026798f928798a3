/**
 * The channel of each destination a route names, from notifications' configuration; a
 * destination the configuration lacks (no webhook for a Slack channel, no SMTP host, …) is a
 * reason, not a channel: its messages are dead-lettered as not_configured.
 */
import type { NotificationsConfig } from '../../config/index.ts';
import { destinationName, type Destination } from '../../rules/index.ts';
import { alertmanagerChannel } from './alertmanager.ts';
import type { Channel } from './channel.ts';
import { emailChannel } from './email.ts';
import { pagerdutyChannel } from './pagerduty.ts';
import { slackChannel } from './slack.ts';
import { webhookChannel } from './webhook.ts';

export type { Channel, SendResult } from './channel.ts';

export class Channels {
  readonly #config: NotificationsConfig;
  readonly #made = new Map<string, Channel | string>();

  constructor(config: NotificationsConfig) {
    this.#config = config;
  }

  /** The channel for `d`, or why there is none. */
  get(d: Destination): Channel | string {
    const name = destinationName(d);
    let c = this.#made.get(name);
    if (c === undefined) {
      c = this.#make(d);
      this.#made.set(name, c);
    }
    return c;
  }

  #make(d: Destination): Channel | string {
    const c = this.#config;
    switch (d.channel) {
      case 'alertmanager':
        return c.alertmanager.url === '' ? 'notifications.alertmanager.url is not set' : alertmanagerChannel(c.alertmanager);
      case 'slack': {
        const url = c.slack[d.to];
        return url === undefined ? `no Slack webhook for ${JSON.stringify(d.to)} in notifications.slack.webhooks` : slackChannel({ channel: d.to, url });
      }
      case 'pagerduty': {
        const name = d.to === '' ? 'default' : d.to;
        const key = c.pagerduty.routingKeys[name];
        return key === undefined ? `no PagerDuty routing key ${JSON.stringify(name)} in notifications.pagerduty.routing_keys` : pagerdutyChannel({ url: c.pagerduty.url, name, routingKey: key });
      }
      case 'webhook': {
        const name = d.to === '' ? 'default' : d.to;
        const hook = c.webhooks[name];
        return hook === undefined ? `no webhook ${JSON.stringify(name)} in notifications.webhooks` : webhookChannel({ name, ...hook });
      }
      case 'email':
        if (c.email.host === '') return 'notifications.email.host is not set';
        return d.to === '' ? 'an email destination needs an address (email: oncall@example.com)' : emailChannel(c.email, d.to);
    }
  }
}
