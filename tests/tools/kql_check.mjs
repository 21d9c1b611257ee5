// Checks KQL files with Microsoft's Kusto language library (npm @kusto/language-service-next, the
// Kusto.Language parser and binder compiled to JavaScript by Bridge.NET).
//
//   node tests/tools/kql_check.mjs FILE.kql [FILE.kql ...]
//
// Prints one JSON object, {"FILE.kql": [diagnostic, ...]}, and exits 0 whatever it found (2 on bad usage
// or when the library cannot be loaded). A diagnostic is {severity, code, message, line, column, start,
// length}: severity "Error" or "Warning", line and column counted from 1, start and length in characters.
//
// Each file is parsed and bound against APP_INSIGHTS below: the Application Insights tables the operator
// queries read, with their columns and types, so an unknown table, column or function is an error, as is
// an operator or function argument of the wrong type. One more rule of our own (code SP001): a file holds one query. Application Insights >
// Logs splits its editor at blank lines and runs only the block at the cursor, so a blank line inside a
// query would silently run half of it.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = path.resolve(here, "..", "..", "node_modules", "@kusto", "language-service-next");

// Bridge.NET's runtime (bridge.js) must load first: it defines the global `Bridge` (on `global` under
// node), and Kusto.Language.Bridge.js registers the `Kusto` namespace on the same global object.
function loadKusto() {
  const require = createRequire(import.meta.url);
  require(path.join(PACKAGE_DIR, "bridge.js"));
  require(path.join(PACKAGE_DIR, "Kusto.Language.Bridge.js"));
  return globalThis.Kusto;
}

// Columns every classic Application Insights table has (the names App Insights > Logs shows, not the
// workspace tables' AppTraces/AppRequests names).
const COMMON = [
  "timestamp:datetime",
  "customDimensions:dynamic",
  "operation_Name:string",
  "operation_Id:string",
  "operation_ParentId:string",
  "operation_SyntheticSource:string",
  "session_Id:string",
  "user_Id:string",
  "user_AuthenticatedId:string",
  "user_AccountId:string",
  "application_Version:string",
  "client_Type:string",
  "client_Model:string",
  "client_OS:string",
  "client_IP:string",
  "client_City:string",
  "client_StateOrProvince:string",
  "client_CountryOrRegion:string",
  "client_Browser:string",
  "cloud_RoleName:string",
  "cloud_RoleInstance:string",
  "appId:string",
  "appName:string",
  "iKey:string",
  "sdkVersion:string",
  "itemId:string",
  "itemType:string",
  "itemCount:int",
];

const APP_INSIGHTS = {
  customMetrics: [
    "name:string",
    "value:real",
    "valueCount:int",
    "valueSum:real",
    "valueMin:real",
    "valueMax:real",
    "valueStdDev:real",
    ...COMMON,
  ],
  traces: ["message:string", "severityLevel:int", "customMeasurements:dynamic", ...COMMON],
  requests: [
    "id:string",
    "source:string",
    "name:string",
    "url:string",
    "success:bool",
    "resultCode:string",
    "duration:real",
    "performanceBucket:string",
    "customMeasurements:dynamic",
    ...COMMON,
  ],
  exceptions: [
    "problemId:string",
    "handledAt:string",
    "type:string",
    "message:string",
    "assembly:string",
    "method:string",
    "outerType:string",
    "outerMessage:string",
    "outerAssembly:string",
    "outerMethod:string",
    "innermostType:string",
    "innermostMessage:string",
    "innermostAssembly:string",
    "innermostMethod:string",
    "severityLevel:int",
    "details:dynamic",
    "customMeasurements:dynamic",
    ...COMMON,
  ],
};

function appInsightsGlobals(Kusto) {
  const Symbols = Kusto.Language.Symbols;
  const tables = Object.entries(APP_INSIGHTS).map(
    ([name, columns]) => new Symbols.TableSymbol.$ctor7(name, `(${columns.join(", ")})`, null),
  );
  const database = new Symbols.DatabaseSymbol.ctor("appinsights", tables);
  return Kusto.Language.GlobalState.Default.WithDatabase(database);
}

function toArray(list) {
  const items = [];
  for (let i = 0; i < list.Count; i++) {
    items.push(list.getItem(i));
  }
  return items;
}

function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\n") {
      starts.push(i + 1);
    }
  }
  return starts;
}

function describe(text, starts, severity, code, message, start, length) {
  let line = 0;
  while (line + 1 < starts.length && starts[line + 1] <= start) {
    line++;
  }
  return { severity, code, message, line: line + 1, column: start - starts[line] + 1, start, length };
}

function isQueryText(blockText) {
  return blockText.split("\n").some((line) => {
    const trimmed = line.trim();
    return trimmed !== "" && !trimmed.startsWith("//");
  });
}

function checkText(Kusto, globals, text) {
  const starts = lineStarts(text);
  const found = [];
  const code = Kusto.Language.KustoCode.ParseAndAnalyze(text, globals);
  for (const d of toArray(code.GetDiagnostics())) {
    found.push(describe(text, starts, String(d.Severity), d.Code, d.Message, d.Start, d.Length));
  }
  const blocks = toArray(Kusto.Language.Editor.CodeScript.From$1(text, globals).Blocks).filter((block) =>
    isQueryText(block.Text),
  );
  for (const block of blocks.slice(1)) {
    found.push(
      describe(
        text,
        starts,
        "Error",
        "SP001",
        `a blank line splits the file into ${blocks.length} queries; App Insights > Logs runs only the one at the cursor`,
        block.Start,
        block.Length,
      ),
    );
  }
  return found.sort((a, b) => a.start - b.start);
}

function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: node tests/tools/kql_check.mjs FILE.kql [FILE.kql ...]\n");
    return 2;
  }
  let Kusto;
  try {
    Kusto = loadKusto();
  } catch (failure) {
    process.stderr.write(`cannot load the Kusto language library from ${PACKAGE_DIR}: ${failure}\n`);
    return 2;
  }
  const globals = appInsightsGlobals(Kusto);
  const report = {};
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (failure) {
      process.stderr.write(`cannot read ${file}: ${failure.message}\n`);
      return 2;
    }
    report[file] = checkText(Kusto, globals, text);
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
