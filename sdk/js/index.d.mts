// Made from index.d.ts by `go test ./sdk -update`: the same types, for import.
// Types of @linkflow/link, linkflow's web drop-in. Docs: docs/sdk.md in the
// linkflow repository.

/** A link's status, as the API names it. */
export type LinkStatus =
  | "pending"
  | "claimed"
  | "running"
  | "awaiting_input"
  | "succeeded"
  | "failed"
  | "canceled"
  | "expired";

/**
 * A stage of the flow, in the order the end user meets them:
 * - `opened`: the login page is shown (again after a wrong password, with `status` `awaiting_input`);
 * - `submitted`: the end user sent the login form (or an answer to a challenge);
 * - `challenge`: the provider asks for a code (MFA);
 * - `working`: linkflow is logging in and running the operations;
 * - `finished`: the link ended (`status` says how).
 */
export type Stage = "opened" | "submitted" | "challenge" | "working" | "finished";

/** What `onSuccess` receives: the link succeeded. */
export interface SuccessEvent {
  linkId: string;
  status: "succeeded";
}

/**
 * Why the drop-in closed without success:
 * - `closed`: the end user closed it (the close button, Escape, the popup's window, the page's own Close button),
 *   or the app called `handle.close()`; `status` says whether the link had failed or expired by then;
 * - `canceled`: the end user canceled the link in the page before it ran; a Cancel while it runs (on a code or
 *   password-again page) fails it `CANCELED`: the page shows it finished, `status` `failed`, and closing it is
 *   `closed`;
 * - `error`: the page could not be shown (this page's origin is not among the organization's allowed origins, the
 *   network failed) or the popup was blocked; `error` says which.
 */
export type ExitReason = "closed" | "canceled" | "error";

/** What `onExit` receives. */
export interface ExitEvent {
  linkId: string;
  /** The link's status as the page last reported it; `null` when the page never reported one. */
  status: LinkStatus | null;
  reason: ExitReason;
  /** For `reason: "error"`: what went wrong, for developers. */
  error?: string;
}

/** What `onEvent` receives, once for each stage the page reaches. */
export interface StageEvent {
  linkId: string;
  status: LinkStatus | null;
  stage: Stage;
}

export interface OpenOptions {
  /** The link's `appClipUrl`, from `POST /v1/links` (your backend creates the link and hands you this URL). */
  url: string;
  /** `"modal"` (default): an iframe over your page, full screen on phones. `"popup"`: a window of its own. */
  mode?: "modal" | "popup";
  /** The link succeeded. Confirm it on your backend (webhook or `GET /v1/links/{linkId}`) before acting on it. */
  onSuccess?: (event: SuccessEvent) => void;
  /** The drop-in closed without success. */
  onExit?: (event: ExitEvent) => void;
  /** Each stage the page reaches. */
  onEvent?: (event: StageEvent) => void;
  /** The accessible name of the dialog and the iframe. Default "Connect your account". */
  title?: string;
  /** The z-index of the modal. Default 2147483000. */
  zIndex?: number;
  /** Where the modal is added. Default `document.body`. */
  container?: HTMLElement;
}

/** An open flow. */
export interface Handle {
  readonly linkId: string;
  /** Closes the drop-in; `onExit` gets `reason: "closed"`. Does nothing once it is closed. */
  close(): void;
}

export interface LinkflowStatic {
  /** The drop-in's version. */
  readonly version: string;
  /**
   * Opens the link's hosted page. One flow is open at a time: opening another closes the first (its `onExit` gets
   * `reason: "closed"`). Throws a TypeError for options that cannot work (no url, not an appClipUrl, an unknown mode).
   */
  open(options: OpenOptions): Handle;
}

export declare const Linkflow: LinkflowStatic;
export default Linkflow;

// With the script tag (which sets window.Linkflow) instead of an import,
// declare the global in your code:
//   declare const Linkflow: import("@linkflow/link").LinkflowStatic;
