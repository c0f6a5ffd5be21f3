// The administrators' index: links to every page and the operations endpoints.

import { markReady, startPage } from "./shell.js";

if (await startPage("/admin")) markReady();
