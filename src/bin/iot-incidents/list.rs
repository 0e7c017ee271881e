//! `list`: incidents, newest first.

use anyhow::Result;
use clap::Args;

use iot_log_monitor::model::category::Category;
use iot_log_monitor::model::time::format_rfc3339;
use iot_log_monitor::store::query::{plan, ListFilter};

use crate::args::Period;
use crate::output::{list_needs_whole_items, print_rows};
use crate::session::Session;

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    category: Option<Category>,
    /// A rule name.
    #[arg(long)]
    rule: Option<String>,
    /// A client id.
    #[arg(long)]
    client: Option<String>,
    #[command(flatten)]
    period: Period,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Items per DynamoDB page.
    #[arg(long, default_value_t = 500, hide = true)]
    page_size: i32,
}

pub async fn run(ctx: &mut Session, args: ListArgs) -> Result<()> {
    let (since_ms, until_ms) = args.period.resolve()?;
    let filter = ListFilter {
        category: args.category,
        rule: args.rule,
        client: args.client,
        since_ms,
        until_ms,
    };
    let mut reader = ctx.reader().await?;
    reader.page_size = args.page_size.max(1);
    let rows = reader.list(&filter, &plan(&filter), args.limit).await?;
    if rows.is_empty() {
        eprintln!(
            "no entries match, {} to {}",
            format_rfc3339(since_ms),
            format_rfc3339(until_ms)
        );
        return Ok(());
    }
    // The indexes carry a few attributes of each entry; the rest of the rows
    // shown (and of no other row) comes from the table.
    let rows = if list_needs_whole_items(ctx.output) {
        reader.whole_items(rows).await?
    } else {
        rows
    };
    print_rows(&mut std::io::stdout().lock(), &rows, ctx.output)
}
