// The editors' knowledge-base page: for now the same search and error reports as the console.

import { $ } from "./dom.js";
import { mountKbPane } from "./kb.js";
import { markReady, startPage } from "./shell.js";

const me = await startPage("/kb");
if (me) {
  mountKbPane($("#kb-pane"), { headingLevel: 2 }).input.focus();
  markReady();
}
