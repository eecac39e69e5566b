/** One bench section in a process of its own (bench/isolated.ts starts it). */
import { figuresLine, type IsolatedSection } from './isolated';
import { benchTargets } from './lsp';
import { recorded } from './table';

const sections: Record<IsolatedSection, () => Promise<void>> = { targets: benchTargets };
const section = process.argv[2] as IsolatedSection;
const run = sections[section];
if (!run) {
  console.error(`unknown bench section: ${section}`);
  process.exit(2);
}
run()
  .then(() => console.log(figuresLine(recorded())))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
