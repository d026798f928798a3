/** Loads test/rules/examples.yaml, the one examples file of the rule-language tests. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface ValidExample {
  condition: string;
  canonical?: string;
  warnings?: string[];
}
export interface ParseErrorExample {
  condition: string;
  at: string;
  message?: string;
  /** Default: syntax. */
  code?: string;
}
export interface ValidationErrorExample {
  condition: string;
  code: string;
  at: string;
}
export interface Examples {
  valid: ValidExample[];
  parse_error: ParseErrorExample[];
  validation_error: ValidationErrorExample[];
}

export const examples = parse(readFileSync(new URL('./examples.yaml', import.meta.url), 'utf8')) as Examples;
