import { Document, HeadingLevel, Packer, Paragraph, TextRun } from 'docx';
import { PDFDocument, StandardFonts } from 'pdf-lib';

/**
 * Documents made by the tests, in the formats chunkers read: real files from
 * the libraries that write them (pdf-lib, docx), not hand-made bytes.
 */

/** A PDF whose pages hold the given paragraphs (each a list of lines), 12-point lines 14 points apart, paragraphs a line apart. */
export async function makePdf(pages: string[][][]): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const paragraphs of pages) {
    const page = pdf.addPage([595, 842]);
    let y = 780;
    for (const lines of paragraphs) {
      for (const line of lines) {
        page.drawText(line, { x: 50, y, size: 12, font });
        y -= 14;
      }
      y -= 14;
    }
  }
  return pdf.save();
}

/** A DOCX of a heading and paragraphs. */
export async function makeDocx(heading: string, paragraphs: string[]): Promise<Uint8Array> {
  const document = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: heading, heading: HeadingLevel.HEADING_1 }),
          ...paragraphs.map((text, i) => new Paragraph({ children: i === 0 ? [new TextRun(text.slice(0, 10)), new TextRun({ text: text.slice(10), bold: true })] : [new TextRun(text)] })),
        ],
      },
    ],
  });
  return new Uint8Array(await Packer.toBuffer(document));
}

/** A bytea value: a Buffer, as node-postgres gives it back. */
export const utf8 = (text: string) => Buffer.from(text, 'utf8');
