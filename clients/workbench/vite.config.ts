// Builds the page into dist/, which the router embeds (build.rs): one HTML file and
// content-hashed assets under assets/, each script and style sheet also gzipped
// (NAME.gz, served to browsers that accept gzip). No source maps, so the committed
// bundle stays small, and a fresh build of the same sources gives the same bytes.
import { gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

function gzipAssets(): Plugin {
  return {
    name: 'gzip-assets',
    apply: 'build',
    generateBundle(_options, bundle) {
      for (const [name, file] of Object.entries(bundle)) {
        if (!/\.(js|css)$/.test(name)) continue;
        const source = file.type === 'chunk' ? file.code : file.source;
        this.emitFile({ type: 'asset', fileName: `${name}.gz`, source: gzipSync(source, { level: 9 }) });
      }
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [gzipAssets()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rolldownOptions: {
      // autobahn in a chunk of its own: its 360 KB keep their name (and the browser's
      // cache, and the repository's history) when only the page's code changes.
      output: {
        codeSplitting: { groups: [{ name: 'autobahn', test: /node_modules[\\/]autobahn-browser/ }] },
      },
      // autobahn's bundle carries an old JSON polyfill with eval(), never reached in
      // a browser that has JSON: not worth a warning on every build.
      onLog(level, log, handler) {
        if (log.code === 'EVAL' && String(log.id ?? log.message).includes('autobahn')) return;
        handler(level, log);
      },
    },
  },
});
